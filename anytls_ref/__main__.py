"""Command line: ``anytls-ref server|client|link|demo|padding|probe`` (= ``python -m anytls_ref``).

The flags of ``server`` and ``client`` are a contract other tools depend on
(see shared/design/architecture.md, "CLI contract"). anytls-go's spellings of the same flags
work too (``-sni``, ``-padding-scheme``, ``-dr``, each as ``-flag VALUE`` or ``-flag=VALUE``;
anytls_ref/config/argv.py), and so do what users of other implementations hold: share links
(config/links.py) and sing-box / mihomo config files with ``-c`` (config/files.py). A flag
given on the command line wins over the link, the link over the file, the file over
``ANYTLS_PASSWORD`` and the defaults (cli/options.py). Any bad flag, file or address ends the
program with one line on stderr and exit code 2 (cli/inputs.py checks the files). This module
builds the parser and runs each subcommand; anytls_ref/cli/ holds the parts they share.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys

from . import __version__
from .cli.inputs import PASSWORD_ENV, first_given, given_password, host_port, read_scheme
from .cli.options import CLIENT_LISTEN, SERVER_LISTEN, client_config, local_users, server_config
from .cli.service import (DEFAULT_GRACE, LOG_LEVEL_ENV, LOG_LEVELS, log_level, os_reason, serve,
                          setup_logging)
from .config.argv import StrictParser, UsageError, go_bool, positive_int, seconds
from .config.links import format_link
from .config.pin import format_fingerprint
from .padding import parse_scheme
from .params import DEFAULT_IDLE_CHECK_INTERVAL, DEFAULT_IDLE_TIMEOUT

log = logging.getLogger("anytls_ref.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = StrictParser(prog="anytls-ref", description="anytls reference implementation")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=StrictParser)

    s = sub.add_parser("server", help="run an anytls server")
    s.add_argument("-l", "--listen", help=f"HOST:PORT to listen on (default {SERVER_LISTEN})")
    s.add_argument("-p", "--password", help=f"the password (or --password-file, --user, "
                                            f"-c, env {PASSWORD_ENV})")
    s.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    s.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                   help="a user of its own (repeatable); the log names each session's user")
    s.add_argument("-c", "--config", metavar="FILE",
                   help="a sing-box JSON or mihomo YAML config: its anytls inbound / listener")
    s.add_argument("--cert", help="certificate file (PEM); default: a fresh self-signed one")
    s.add_argument("--key", help="private key file (PEM)")
    s.add_argument("--cert-out", metavar="FILE",
                   help="write the certificate (e.g. the self-signed one) to FILE, for --ca")
    s.add_argument("-padding-scheme", "--padding-scheme",
                   help="padding scheme file (default: the spec's default)")
    s.add_argument("--fallback", help="HOST:PORT to relay failed authentications to")
    s.add_argument("--min-version", type=int, default=1,
                   help="reject clients older than this protocol version with cmdAlert")
    s.add_argument("--trace", action="store_true", help="log one line per frame")
    add_service_flags(s)

    c = sub.add_parser("client", help="run a local SOCKS5/HTTP proxy through an anytls server")
    c.add_argument("-l", "--listen",
                   help=f"local HOST:PORT, SOCKS5 and HTTP (default {CLIENT_LISTEN})")
    c.add_argument("-s", "--server", help="HOST:PORT or an anytls:// share link")
    c.add_argument("-p", "--password")
    c.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    c.add_argument("-c", "--config", metavar="FILE",
                   help="a sing-box JSON or mihomo YAML config: its anytls outbound / proxy")
    c.add_argument("-sni", "--sni", help="TLS server name (default: the server host)")
    c.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    c.add_argument("--ca", help="CA certificate file to verify the server with")
    c.add_argument("--pin", metavar="SHA256",
                   help="the server certificate's SHA-256 (the server logs it): checked instead "
                        "of a CA chain")
    c.add_argument("-m", "--min-idle", type=int, help="idle sessions always kept (default 0)")
    c.add_argument("--idle-timeout", type=seconds, metavar="SECONDS",
                   help=f"close sessions idle this long (default {DEFAULT_IDLE_TIMEOUT:g})")
    c.add_argument("--idle-check", type=seconds, metavar="SECONDS",
                   help=f"look for idle sessions this often (default "
                        f"{DEFAULT_IDLE_CHECK_INTERVAL:g})")
    c.add_argument("--disable-reuse", action="store_const", const=True,
                   help="one session per connection")
    c.add_argument("-dr", dest="disable_reuse", nargs="?", const=True, type=go_bool,
                   metavar="BOOL", help="anytls-go's spelling of --disable-reuse")
    c.add_argument("--heartbeat", type=seconds, metavar="SECONDS",
                   help="active keepalive: probe idle sessions of v2 servers with cmdHeartRequest "
                        "every SECONDS, and drop those that do not answer")
    c.add_argument("--wait-synack", action="store_true",
                   help="answer the SOCKS5/HTTP client only once the server confirms the stream "
                        "(cmdSYNACK): a refused target is an error reply, at the cost of a "
                        "round trip per connection (by default the client answers at once, as "
                        "the Go clients do, and a refused target closes the connection)")
    c.add_argument("--fast-open", action="store_true",
                   help="answer at once: now the default, accepted so old command lines still run")
    c.add_argument("--local-auth", metavar="USER:PASS",
                   help="the local SOCKS5/HTTP port asks for this username and password "
                        "(SOCKS5 RFC 1929, HTTP Proxy-Authorization: Basic)")
    c.add_argument("--trace", action="store_true", help="log one line per frame")
    add_service_flags(c)

    k = sub.add_parser("link", help="print the share link of a running server (with its pin)")
    k.add_argument("address", metavar="HOST:PORT", help="the server's address, as clients use it")
    k.add_argument("-p", "--password")
    k.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    k.add_argument("--connect", metavar="HOST:PORT",
                   help="where to reach the server from here (default: HOST:PORT)")
    k.add_argument("-sni", "--sni", help="TLS server name for the link (default: HOST)")
    k.add_argument("--name", help="the node's name (the link's #fragment)")

    d = sub.add_parser("demo", help="show the main job on loopback: server, client, a page fetched")
    d.add_argument("--trace", action="store_true",
                   help="also print every frame the client and server exchange")

    pad = sub.add_parser("padding", help="check and explain a padding scheme (no network)")
    which = pad.add_mutually_exclusive_group()
    which.add_argument("--scheme", metavar="FILE", help="padding scheme file to check")
    which.add_argument("--default", action="store_true", help="the spec's default (the default)")
    pad.add_argument("--simulate", type=int, metavar="BYTES",
                     help="show how one write of BYTES is split into TLS records per packet")
    pad.add_argument("--samples", type=int, default=3, metavar="N",
                     help="sampled record-size plans to print (default 3)")
    pad.add_argument("--seed", type=int, metavar="N", help="seed for the samples (default: random)")

    from .probe.cli import add_probe_parser  # probe server / probe client (anytls_ref/probe/)

    add_probe_parser(sub)
    add_common_flags(parser, top=True)
    return parser


def add_service_flags(parser: argparse.ArgumentParser) -> None:
    """``--grace`` and ``--max-connections``: how a long-running server or client stops, and
    how many connections it holds at once."""
    from .net.listener import default_max_connections

    parser.add_argument("--grace", type=seconds, default=DEFAULT_GRACE, metavar="SECONDS",
                        help=f"on SIGTERM/SIGINT, let running streams finish for up to SECONDS "
                             f"(default {DEFAULT_GRACE:g}); a second signal stops at once")
    parser.add_argument("--max-connections", type=positive_int, metavar="N",
                        help=f"hold at most N connections at once; more wait in the listen "
                             f"backlog (default from the open-files limit: "
                             f"{default_max_connections()} now)")


def add_common_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--version`` and ``--log-level`` on ``parser`` and every subcommand under it, so that
    both work before or after the subcommand. A subcommand's ``--log-level`` has no default
    of its own (SUPPRESS): it would hide the one given before the subcommand."""
    parser.add_argument("--version", action="version", version=f"anytls-ref {__version__}")
    parser.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS,
                        default=None if top else argparse.SUPPRESS,
                        help=f"debug, info, warning or error (default: ${LOG_LEVEL_ENV}, "
                             "else info)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subcommand in action.choices.values():
                add_common_flags(subcommand, top=False)


def run_server(args) -> int:
    from .net.server import Server

    config = server_config(args)
    try:
        server = Server(config)
    except ssl.SSLError as exc:  # checked files OpenSSL still refuses (a key type it lacks)
        raise UsageError(f"certificate {config.cert_file} / key {config.key_file}: OpenSSL "
                         f"refuses them: {exc.reason or exc}") from None
    except OSError as exc:  # the listen address is taken or not ours
        raise UsageError(f"cannot listen on {'%s:%d' % config.listen}: "
                         f"{os_reason(exc)}") from None
    if args.cert_out is not None:
        try:
            with open(args.cert_out, "wb") as f:
                f.write(server.certificate_pem)
        except OSError as exc:
            server.close()
            raise UsageError(f"--cert-out {args.cert_out}: {exc.strerror}") from None
        log.info("certificate written to %s (clients: --ca %s)", args.cert_out, args.cert_out)
    return serve(server, args.grace, lambda cut: server_stop_line(server, cut))


def server_stop_line(server, cut: int) -> str:
    stats = server.stats
    return (f"anytls server stopped: {stats.sessions} sessions, {stats.streams} streams served "
            f"({stats.connections} connections, {stats.auth_failures} failed authentications)"
            + (f"; {cut} streams cut at the end of --grace" if cut else ""))


def run_client(args) -> int:
    from .net.client import Client
    from .net.inbound import LocalAuth, ProxyInbound

    config, listen = client_config(args)
    users = local_users(args)
    try:
        client = Client(config)
    except ssl.SSLError as exc:  # a CA file OpenSSL still refuses
        raise UsageError(f"CA file {config.ca_file}: OpenSSL refuses it: "
                         f"{exc.reason or exc}") from None
    auth = LocalAuth(*users[0], *users[1:]) if users else None
    try:
        inbound = ProxyInbound(listen, client, auth=auth, max_connections=args.max_connections)
    except OSError as exc:
        client.close()
        raise UsageError(f"cannot listen on {listen[0]}:{listen[1]}: "
                         f"{os_reason(exc)}") from None
    # the start-up line: what runs, where, for whom, through which server
    log.info("anytls client: SOCKS5/HTTP proxy listening on %s:%d (anytls-ref %s; %s), "
             "anytls server %s:%d%s", *inbound.address, __version__,
             f"--local-auth: {len(users)} user{'s' if len(users) != 1 else ''}" if users
             else "no --local-auth", *config.server,
             f" (node {config.name})" if config.name else "")

    def stop_line(cut: int) -> str:
        stats = client.stats
        return (f"anytls client stopped: {stats.sessions} sessions, {stats.streams} streams "
                "served" + (f"; {cut} connections cut at the end of --grace" if cut else ""))

    return serve(inbound, args.grace, stop_line)


def run_link(args) -> int:
    """Print the share link of a running server, pinned to its certificate unless this
    machine's CAs trust it (a trusted certificate may be renewed without a new link)."""
    from .net.tls import peer_certificate

    host, port = host_port(args.address, what="server address")
    password = first_given(given_password(args), os.environ.get(PASSWORD_ENV) or None)
    if not password:
        raise UsageError(f"a password is needed: -p PASSWORD, --password-file FILE or "
                         f"{PASSWORD_ENV}")
    connect = host_port(args.connect, what="--connect address") if args.connect else (host, port)
    try:
        fingerprint, trusted = peer_certificate(connect, args.sni or host)
    except (OSError, ssl.SSLError) as exc:
        from .net.diagnose import connect_failure

        raise UsageError(connect_failure(exc, connect)) from None
    print(format_link(host, port, password, sni=args.sni, pin=None if trusted else fingerprint,
                      name=args.name))
    log.info("certificate sha256 %s (%s)", format_fingerprint(fingerprint),
             "trusted by this machine's CAs: no pin" if trusted else "pinned in the link: hpkp")
    return 0


def run_padding(args) -> int:
    import random

    from .tools.inspect_padding import report

    if args.samples < 0:
        raise UsageError("--samples must be 0 or more")
    if args.simulate is not None and not 0 <= args.simulate <= MAX_SIMULATE:
        raise UsageError(f"--simulate takes 0..{MAX_SIMULATE} bytes")
    raw = read_scheme(args.scheme)  # strict: a bad line is an error naming it
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    report(parse_scheme(raw, strict=True), name=args.scheme or "default",
           samples=args.samples, seed=seed, rng=random.Random(seed), simulate_bytes=args.simulate)
    return 0


#: The largest write ``padding --simulate`` splits (it builds the bytes).
MAX_SIMULATE = 1 << 24


def main(argv: list[str] | None = None) -> int:
    from .tools.pipes import run_into_pipe

    # `anytls-ref demo | head`: the reader's going ends the output quietly (tools/pipes.py)
    return run_into_pipe(lambda: run(argv))


def run(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        setup_logging(log_level(args))
        if args.command == "server":
            return run_server(args)
        if args.command == "client":
            return run_client(args)
        if args.command == "link":
            return run_link(args)
        if args.command == "padding":
            return run_padding(args)
        if args.command == "probe":
            from .probe.cli import run_probe

            return run_probe(args, host_port=host_port, read_scheme=read_scheme)
        if args.command == "demo":
            from .net.demo import run_demo

            if "--log-level" not in (argv or sys.argv):
                logging.getLogger().setLevel(logging.WARNING)  # keep the demo's story readable
            if args.trace:
                from .tools.pipes import PipeHandler

                trace_log = logging.getLogger("anytls_ref.trace")
                trace_log.setLevel(logging.INFO)
                handler = PipeHandler()
                handler.setFormatter(logging.Formatter("  %(message)s"))
                trace_log.addHandler(handler)
                trace_log.propagate = False
            return run_demo(trace=args.trace)
    except UsageError as exc:
        print(f"anytls-ref: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
