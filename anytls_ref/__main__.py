"""Command line: ``anytls-ref server|client|link|demo|padding|probe`` (= ``python -m anytls_ref``).

The flags of ``server`` and ``client`` are a contract other tools depend on
(see shared/design/architecture.md, "CLI contract"). anytls-go's spellings of the same flags
work too (``-sni``, ``-padding-scheme``, ``-dr``, each as ``-flag VALUE`` or ``-flag=VALUE``;
anytls_ref/config/argv.py), and so do what users of other implementations hold: share links
(config/links.py) and sing-box / mihomo config files with ``-c`` (config/files.py). A flag
given on the command line wins over the link, the link over the file, the file over
``ANYTLS_PASSWORD`` and the defaults. Any bad flag, file or address ends the program with one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import threading

from . import __version__
from .config.argv import StrictParser, UsageError, go_bool
from .config.files import read_client_config, read_server_config
from .config.links import format_link, parse_link
from .config.model import ClientOptions, ConfigError, ServerOptions, User, check_users
from .config.pin import format_fingerprint, parse_pin
from .errors import PaddingSchemeError
from .padding import DEFAULT_SCHEME, parse_scheme
from .params import DEFAULT_IDLE_CHECK_INTERVAL, DEFAULT_IDLE_TIMEOUT, ClientParams

log = logging.getLogger("anytls_ref.cli")

#: anytls-go's defaults for -l (cmd/server/main.go, cmd/client/main.go)
SERVER_LISTEN = "0.0.0.0:8443"
CLIENT_LISTEN = "127.0.0.1:1080"
#: the password, when no flag, link or config file gives one (it does not show in ps)
PASSWORD_ENV = "ANYTLS_PASSWORD"


def host_port(text: str, *, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{what} {text!r} is not HOST:PORT")
    return host, int(port)


def read_scheme(path: str | None) -> bytes:
    if path is None:
        return DEFAULT_SCHEME
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UsageError(f"padding scheme {path}: {exc.strerror}") from None
    return checked_scheme(raw, f"padding scheme {path}")


def checked_scheme(raw: bytes, what: str) -> bytes:
    """``raw`` if it is a valid padding scheme (strict: a bad line is an error naming it)."""
    try:
        parse_scheme(raw, strict=True)
    except PaddingSchemeError as exc:
        raise UsageError(f"{what}: {exc}") from None
    return raw


def readable_file(path: str | None, what: str) -> str | None:
    if path is not None and not os.path.isfile(path):
        raise UsageError(f"{what} {path}: no such file")
    return path


def read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not UTF-8 text") from None


def given_password(args) -> str | None:
    """``-p`` or ``--password-file`` (one of them), or None; an empty one is refused."""
    if args.password is not None and args.password_file is not None:
        raise UsageError("-p and --password-file: give one of them")
    if args.password_file is not None:
        password = read_text(args.password_file, "password file").rstrip("\r\n")
        if not password:
            raise UsageError(f"password file {args.password_file}: empty")
        return password
    if args.password == "":
        raise UsageError("-p: an empty password is refused")
    return args.password


def load_config(path: str | None, reader, empty):
    """The settings of a ``-c`` file, or ``empty`` without one."""
    if path is None:
        return empty
    try:
        return reader(read_text(path, "config"), os.path.dirname(os.path.abspath(path)))
    except ConfigError as exc:
        raise UsageError(f"config {path}: {exc}") from None


def warn_unsupported(source: str, names: tuple[str, ...]) -> None:
    if names:
        log.warning("%s: not supported, ignored: %s", source, "; ".join(names))


def first_given(*values):
    return next((value for value in values if value is not None), None)


def build_parser() -> argparse.ArgumentParser:
    parser = StrictParser(prog="anytls-ref", description="anytls reference implementation")
    parser.add_argument("--version", action="version", version=f"anytls-ref {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
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
    c.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                   help=f"close sessions idle this long (default {DEFAULT_IDLE_TIMEOUT:g})")
    c.add_argument("--idle-check", type=float, metavar="SECONDS",
                   help=f"look for idle sessions this often (default "
                        f"{DEFAULT_IDLE_CHECK_INTERVAL:g})")
    c.add_argument("--disable-reuse", action="store_const", const=True,
                   help="one session per connection")
    c.add_argument("-dr", dest="disable_reuse", nargs="?", const=True, type=go_bool,
                   metavar="BOOL", help="anytls-go's spelling of --disable-reuse")
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
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(message)s",
                        datefmt="%H:%M:%S")


def server_config(args):
    """The ServerConfig the command line (and its -c file) asks for."""
    from .net.server import DEFAULT_USER, ServerConfig

    if bool(args.cert) != bool(args.key):
        raise UsageError("--cert and --key go together")
    if args.min_version < 1:
        raise UsageError("--min-version must be 1 or more")
    options = load_config(args.config, read_server_config, ServerOptions())
    warn_unsupported(f"config {args.config}", options.unsupported)
    password = given_password(args)
    users = [User(DEFAULT_USER, password)] if password is not None else []
    for spec in args.user:
        name, colon, user_password = spec.partition(":")
        if not colon or not name:
            raise UsageError("--user takes NAME:PASSWORD (a name, a colon, then the password)")
        users.append(User(name, user_password))
    if not users:
        users = list(options.users)
    if not users and os.environ.get(PASSWORD_ENV):
        users = [User(DEFAULT_USER, os.environ[PASSWORD_ENV])]
    if not users:
        raise UsageError(f"a password is needed: -p/--password PASSWORD, --password-file FILE, "
                         f"--user NAME:PASSWORD, -c FILE or {PASSWORD_ENV}")
    try:
        check_users(users)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    cert, key = (args.cert, args.key) if args.cert else (options.cert_file, options.key_file)
    if bool(cert) != bool(key):
        raise UsageError(f"config {args.config}: a certificate needs its key and a key its "
                         "certificate")
    if args.padding_scheme is not None:
        scheme = read_scheme(args.padding_scheme)
    elif options.padding_scheme is not None:
        scheme = checked_scheme(options.padding_scheme, f"config {args.config}: padding scheme")
    else:
        scheme = DEFAULT_SCHEME
    return ServerConfig(
        listen=host_port(args.listen, what="listen address") if args.listen
        else options.listen or host_port(SERVER_LISTEN),
        users=tuple(users),
        cert_file=readable_file(cert, "certificate"),
        key_file=readable_file(key, "key"),
        padding_scheme=scheme,
        fallback=host_port(args.fallback, what="fallback address") if args.fallback else None,
        min_version=args.min_version,
        trace=args.trace,
    )


def run_server(args) -> int:
    from .net.server import Server

    config = server_config(args)
    try:
        server = Server(config)
    except ssl.SSLError as exc:  # a certificate/key pair that does not load (an OSError too)
        raise UsageError(f"certificate {config.cert_file} / key {config.key_file}: "
                         f"{exc}") from None
    except OSError as exc:  # the listen address is taken or not ours
        listen = "%s:%d" % config.listen
        raise UsageError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    if args.cert_out is not None:
        try:
            with open(args.cert_out, "wb") as f:
                f.write(server.certificate_pem)
        except OSError as exc:
            server.close()
            raise UsageError(f"--cert-out {args.cert_out}: {exc.strerror}") from None
        log.info("certificate written to %s (clients: --ca %s)", args.cert_out, args.cert_out)
    with server:
        wait_for_signal()
    return 0


def client_config(args):
    """(the ClientConfig, the local listen address) the command line (and -c file) asks for."""
    from .net.client import ClientConfig

    options = load_config(args.config, read_client_config, ClientOptions())
    warn_unsupported(f"config {args.config}", options.unsupported)
    link = ClientOptions()
    if args.server is not None and "://" in args.server:  # only anytls:// is a link
        try:
            link = parse_link(args.server)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        warn_unsupported("share link", link.unsupported)
    elif args.server is not None:
        link = ClientOptions(server=host_port(args.server, what="server"))

    def said(name: str):  # the link's value, else the file's
        return first_given(getattr(link, name), getattr(options, name))

    server = said("server")
    if server is None:
        raise UsageError("the server is needed: -s/--server HOST:PORT or an anytls:// link, "
                         "or -c FILE")
    password = first_given(given_password(args), said("password"),
                           os.environ.get(PASSWORD_ENV) or None)
    if not password:  # [PARAM-PASSWORD] "Required"
        raise UsageError(f"a password is needed: -p PASSWORD, --password-file FILE, "
                         f"anytls://PASSWORD@HOST:PORT, -c FILE or {PASSWORD_ENV}")
    try:
        pin = parse_pin(args.pin) if args.pin is not None else said("pin")
        params = ClientParams(password,
                              first_given(args.idle_check, said("idle_check"),
                                          DEFAULT_IDLE_CHECK_INTERVAL),
                              first_given(args.idle_timeout, said("idle_timeout"),
                                          DEFAULT_IDLE_TIMEOUT),
                              first_given(args.min_idle, said("min_idle"), 0))
    except ValueError as exc:  # ConfigError is one too
        raise UsageError(str(exc)) from None
    if args.heartbeat is not None and not args.heartbeat > 0:
        raise UsageError("--heartbeat must be a positive number of seconds")
    config = ClientConfig(server=server, password=password, sni=args.sni or said("sni"),
                          insecure=args.insecure or bool(said("insecure")),
                          ca_file=readable_file(args.ca or said("ca_file"), "CA file"),
                          params=params, pin=pin, alpn=said("alpn") or (), name=said("name"),
                          disable_reuse=bool(first_given(args.disable_reuse,
                                                         said("disable_reuse"))),
                          trace=args.trace, heartbeat=args.heartbeat,
                          wait_synack=args.wait_synack)
    listen = host_port(args.listen, what="listen address") if args.listen \
        else options.listen or host_port(CLIENT_LISTEN)
    return config, listen


def run_client(args) -> int:
    from .net.client import Client
    from .net.inbound import ProxyInbound

    config, listen = client_config(args)
    try:
        client = Client(config)
    except Exception as exc:  # ssl.SSLError for an unreadable CA file
        raise UsageError(f"CA file {config.ca_file}: {exc}") from None
    try:
        inbound = ProxyInbound(listen, client)
    except OSError as exc:
        client.close()
        raise UsageError(f"cannot listen on {listen[0]}:{listen[1]}: "
                         f"{exc.strerror or exc}") from None
    log.info("anytls server %s:%d%s", *config.server,
             f" (node {config.name})" if config.name else "")
    with inbound:
        wait_for_signal()
    return 0


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
        raise UsageError(f"cannot reach {connect[0]}:{connect[1]}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
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
