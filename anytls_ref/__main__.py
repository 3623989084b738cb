"""Command line: ``anytls-ref server|client|demo|padding|probe ...`` (also ``python -m anytls_ref``).

The flags of ``server`` and ``client`` are a contract other tools depend on
(see shared/design/architecture.md, "CLI contract"). Any bad flag, file or address ends the
program with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import threading
from urllib.parse import parse_qs, unquote, urlsplit

from . import __version__
from .errors import PaddingSchemeError
from .padding import DEFAULT_SCHEME, parse_scheme
from .params import DEFAULT_IDLE_CHECK_INTERVAL, DEFAULT_IDLE_TIMEOUT, ClientParams


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


def host_port(text: str, *, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{what} {text!r} is not HOST:PORT")
    return host, int(port)


def parse_server_uri(uri: str) -> dict:
    """``anytls://PASSWORD@HOST:PORT/?sni=NAME&insecure=1`` → its parts."""
    usage = f"server URI {uri!r} is not anytls://PASSWORD@HOST:PORT/?sni=..&insecure=1"
    try:
        url = urlsplit(uri)
        port = url.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        raise UsageError(usage) from None
    if url.scheme != "anytls" or not url.hostname or port is None:
        raise UsageError(usage)
    query = parse_qs(url.query)
    return {
        "server": (url.hostname, port),
        "password": unquote(url.username) if url.username is not None else None,
        "sni": query.get("sni", [None])[0],
        "insecure": query.get("insecure", ["0"])[0] in ("1", "true"),
    }


def read_scheme(path: str | None) -> bytes:
    if path is None:
        return DEFAULT_SCHEME
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UsageError(f"padding scheme {path}: {exc.strerror}") from None
    try:
        parse_scheme(raw, strict=True)
    except PaddingSchemeError as exc:
        raise UsageError(f"padding scheme {path}: {exc}") from None
    return raw


def readable_file(path: str | None, what: str) -> str | None:
    if path is not None and not os.path.isfile(path):
        raise UsageError(f"{what} {path}: no such file")
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="anytls-ref", description="anytls reference implementation")
    parser.add_argument("--version", action="version", version=f"anytls-ref {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("server", help="run an anytls server")
    s.add_argument("-l", "--listen", required=True, help="HOST:PORT to listen on")
    s.add_argument("-p", "--password", required=True)
    s.add_argument("--cert", help="certificate file (PEM); default: a fresh self-signed one")
    s.add_argument("--key", help="private key file (PEM)")
    s.add_argument("--padding-scheme", help="padding scheme file (default: the spec's default)")
    s.add_argument("--fallback", help="HOST:PORT to relay failed authentications to")
    s.add_argument("--min-version", type=int, default=1,
                   help="reject clients older than this protocol version with cmdAlert")
    s.add_argument("--trace", action="store_true", help="log one line per frame")

    c = sub.add_parser("client", help="run a local SOCKS5/HTTP proxy through an anytls server")
    c.add_argument("-l", "--listen", required=True, help="local HOST:PORT (SOCKS5 and HTTP)")
    c.add_argument("-s", "--server", required=True, help="HOST:PORT or anytls:// URI")
    c.add_argument("-p", "--password")
    c.add_argument("--sni", help="TLS server name (default: the server host)")
    c.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    c.add_argument("--ca", help="CA certificate file to verify the server with")
    c.add_argument("-m", "--min-idle", type=int, default=0, help="idle sessions always kept")
    c.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="SECONDS")
    c.add_argument("--idle-check", type=float, default=DEFAULT_IDLE_CHECK_INTERVAL,
                   metavar="SECONDS")
    c.add_argument("--disable-reuse", action="store_true", help="one session per connection")
    c.add_argument("--heartbeat", type=float, metavar="SECONDS",
                   help="active keepalive: probe idle sessions of v2 servers with cmdHeartRequest "
                        "every SECONDS, and drop those that do not answer")
    c.add_argument("--wait-synack", action="store_true",
                   help="answer the SOCKS5/HTTP client only once the server confirms the stream "
                        "(cmdSYNACK): a refused target is an error reply, at the cost of a "
                        "round trip per connection (by default the client answers at once, as "
                        "the Go clients do, and a refused target closes the connection)")
    c.add_argument("--fast-open", action="store_true",
                   help="answer at once: now the default, accepted so old command lines still run")
    c.add_argument("--trace", action="store_true", help="log one line per frame")

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
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(message)s",
                        datefmt="%H:%M:%S")


def run_server(args) -> int:
    from .net.server import Server, ServerConfig

    if bool(args.cert) != bool(args.key):
        raise UsageError("--cert and --key go together")
    if args.min_version < 1:
        raise UsageError("--min-version must be 1 or more")
    config = ServerConfig(
        listen=host_port(args.listen, what="listen address"),
        password=args.password,
        cert_file=readable_file(args.cert, "certificate"),
        key_file=readable_file(args.key, "key"),
        padding_scheme=read_scheme(args.padding_scheme),
        fallback=host_port(args.fallback, what="fallback address") if args.fallback else None,
        min_version=args.min_version,
        trace=args.trace,
    )
    try:
        server = Server(config)
    except ssl.SSLError as exc:  # a certificate/key pair that does not load (an OSError too)
        raise UsageError(f"certificate {args.cert} / key {args.key}: {exc}") from None
    except OSError as exc:  # the listen address is taken or not ours
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    with server:
        wait_for_signal()
    return 0


def run_client(args) -> int:
    from .net.client import Client, ClientConfig
    from .net.inbound import ProxyInbound

    if "://" in args.server:  # a URI: only anytls:// is one (http://h:1 is no HOST:PORT)
        uri = parse_server_uri(args.server)
        server, password = uri["server"], args.password or uri["password"]
        sni, insecure = args.sni or uri["sni"], args.insecure or uri["insecure"]
    else:
        server, password = host_port(args.server, what="server"), args.password
        sni, insecure = args.sni, args.insecure
    if not password:  # [PARAM-PASSWORD] "Required"
        raise UsageError("a password is needed: -p PASSWORD or anytls://PASSWORD@HOST:PORT")
    try:
        params = ClientParams(password, args.idle_check, args.idle_timeout, args.min_idle)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.heartbeat is not None and not args.heartbeat > 0:
        raise UsageError("--heartbeat must be a positive number of seconds")
    config = ClientConfig(server=server, password=password, sni=sni, insecure=insecure,
                          ca_file=readable_file(args.ca, "CA file"), params=params,
                          disable_reuse=args.disable_reuse, trace=args.trace,
                          heartbeat=args.heartbeat, wait_synack=args.wait_synack)
    listen = host_port(args.listen, what="listen address")
    try:
        client = Client(config)
    except Exception as exc:  # ssl.SSLError for an unreadable CA file
        raise UsageError(f"CA file {args.ca}: {exc}") from None
    try:
        inbound = ProxyInbound(listen, client)
    except OSError as exc:
        client.close()
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    with inbound:
        wait_for_signal()
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
    try:
        report(parse_scheme(raw, strict=True), name=args.scheme or "default",
               samples=args.samples, seed=seed, rng=random.Random(seed),
               simulate_bytes=args.simulate)
    except BrokenPipeError:  # `anytls-ref padding | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


#: The largest write ``padding --simulate`` splits (it builds the bytes).
MAX_SIMULATE = 1 << 24


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM; the caller's ``with`` block then shuts down cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        setup_logging(args.log_level)
        if args.command == "server":
            return run_server(args)
        if args.command == "client":
            return run_client(args)
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
                trace_log = logging.getLogger("anytls_ref.trace")
                trace_log.setLevel(logging.INFO)
                handler = logging.StreamHandler(sys.stdout)
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
