"""anytls_ref — the reference implementation of the anytls proxy protocol.

Read it next to the spec (spec_notes/ has the pinned text's section map). The pure layer, one
module per spec section, does no I/O; ``anytls_ref.net`` owns the sockets, TLS and threads.

Each spec section's decisions live in one pure module; the net layer carries them out in one
module per role (the second column; "—": nothing of that section needs I/O of its own).

| spec section                                                   | pure          | net               |
|----------------------------------------------------------------|---------------|-------------------|
| Client › Authentication                                        | auth.py       | net/client.py     |
| Server › Authentication                                        | auth.py       | net/server.py     |
| Client › Session: frame format, command list                   | frame.py      | net/session.py    |
| Session rules (cmdWaste ... cmdServerSettings), Server › Session | rules.py    | net/session.py    |
| cmdSettings / cmdServerSettings / cmdAlert payloads            | settings.py   | —                 |
| paddingScheme specific meaning and implementation              | padding.py    | net/session.py    |
| Update Records › Protocol Version 2 (cmdSYNACK), Compatibility | version.py    | net/client.py     |
| Client › Reuse                                                 | reuse.py      | net/client.py     |
| Client › Proxy (TCP: SocksAddr)                                | socksaddr.py  | net/inbound.py    |
| Server › Proxy (TCP: SocksAddr)                                | socksaddr.py  | net/server.py     |
| Client › Proxy, Server › Proxy (UDP over TCP)                  | uot.py        | net/udp.py        |
| Protocol Parameters                                            | params.py     | net/client.py     |
| (all errors, and the typed reasons decisions switch on)        | errors.py     | —                 |
"""

__version__ = "0.1.0"
# [SESS-SETTINGS-CLIENT-NAME] "third-party implementations should fill in the real software
# name and version number"
CLIENT_NAME = f"anytls-ref/{__version__}"
