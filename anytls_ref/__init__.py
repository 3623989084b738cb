"""anytls_ref — the reference implementation of the anytls proxy protocol.

Read it next to the spec (spec_notes/ has the pinned text's section map). The pure layer, one
module per spec section, does no I/O; ``anytls_ref.net`` owns the sockets, TLS and threads.

| spec section                                                   | module        |
|----------------------------------------------------------------|---------------|
| Client › Authentication, Server › Authentication               | auth.py       |
| Client › Session: frame format, command list                   | frame.py      |
| cmdSettings / cmdServerSettings / cmdAlert payloads            | settings.py   |
| paddingScheme specific meaning and implementation              | padding.py    |
| Session rules (cmdWaste ... cmdServerSettings), Server › Session | session.py  |
| Update Records › Protocol Version 2, Compatibility Strategy    | version.py    |
| Client › Reuse                                                 | reuse.py      |
| Client › Proxy, Server › Proxy (SocksAddr, UDP over TCP)       | socksaddr.py, uot.py |
| Protocol Parameters                                            | params.py     |
| (all errors)                                                   | errors.py     |
"""

__version__ = "0.1.0"
# [SESS-SETTINGS-CLIENT-NAME] "third-party implementations should fill in the real software
# name and version number"
CLIENT_NAME = f"anytls-ref/{__version__}"
