"""anytls_ref.config — what users already hold, read into typed settings.

A user coming from another anytls implementation holds a command line, a share link or a
config file. Each has its module here, and each module opens with the document it implements:

| input                                                  | module          |
|--------------------------------------------------------|-----------------|
| anytls-go's command lines (`-l`, `-s`, `-sni`, `-p`, `-m`, `-dr`, `-padding-scheme`) | `argv.py` |
| share links, anytls-go's docs/uri_scheme.md            | `links.py`      |
| a sing-box JSON config (anytls inbound / outbound)     | `singbox.py`    |
| a mihomo YAML config (anytls listener / proxy)         | `mihomo.py`     |
| telling the two config formats apart                   | `files.py`      |
| certificate fingerprints (`--pin`, `hpkp`, mihomo's `fingerprint`) | `pin.py` |
| the settings they all produce                          | `model.py`      |

Like the rest of the pure layer this package does no I/O: text in, settings out. The command
line (``anytls_ref/__main__.py``) reads the files and the environment and hands their text here.
"""
