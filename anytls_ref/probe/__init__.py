"""anytls_ref.probe — scripted peers and the ``anytls-ref probe`` conformance tool.

Like ``anytls_ref.net``, this package does I/O (sockets, TLS, threads); it is built on the pure
layer and, for targets and TLS contexts, on ``net``.

| module            | what                                                                  |
|-------------------|-----------------------------------------------------------------------|
| rawclient.py      | frame-by-frame clients: RawClient, ScriptedClient (v1/v2/v3)          |
| rawserver.py      | a frame-by-frame server with hooks: RawServer                         |
| scripting.py      | what both share: raw frames, one-record reads, ``eventually``         |
| targets.py        | the local echo target and a refused port the server checks dial       |
| server_probe.py   | ``probe server HOST:PORT``: the checks against any anytls server      |
| client_probe.py   | ``probe client -l HOST:PORT``: a probe server, checks of a client     |
| shaping.py        | pure: TLS records read back into writes, checked against scheme lines |
| report.py         | check results, the table and the JSON                                 |
| cli.py            | the ``probe`` subcommands                                             |
"""
