"""The command line's parts: what ``anytls_ref/__main__.py`` (the parser and one ``run_*`` per
subcommand) uses to read what the user gave and to run a service.

- ``inputs``: addresses, passwords, padding schemes, certificates and config files named on
  the command line, each checked so that a mistake is one line naming it;
- ``options``: the server's and the client's settings from flags, link, file and environment;
- ``service``: log levels and format, the stop signals, and serving until one comes.
"""
