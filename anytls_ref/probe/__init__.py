"""anytls_ref.probe — scripted peers and the ``anytls-ref probe`` conformance tool.

Like ``anytls_ref.net``, this package does I/O (sockets, TLS, threads); it is built on the pure
layer and, for targets and TLS contexts, on ``net``.

| module            | what                                                                  |
|-------------------|-----------------------------------------------------------------------|
| rawclient.py      | frame-by-frame clients: RawClient, ScriptedClient (v1/v2/v3)          |
| rawserver.py      | a frame-by-frame server with hooks: RawServer                         |
| scripting.py      | what both share: raw frames, one-record reads, ``eventually``         |
| targets.py        | the local echo target and a refused port the server checks dial       |
| server_probe.py   | ``probe server HOST:PORT``: the probe's connections and targets       |
| server_checks.py  | the checks it runs against any anytls server, in order (``CHECKS``)   |
| client_probe.py   | ``probe client -l HOST:PORT``: the traffic through a client, verdicts |
| client_script.py  | the probe server a client is pointed at: what each target port does   |
| client_checks.py  | the checks of a client, in order (``CLIENT_CHECKS``)                  |
| shaping.py        | pure: TLS records read back into writes, checked against scheme lines |
| report.py         | check results, the table and the JSON                                 |
| cli.py            | the ``probe`` subcommands                                             |
"""
