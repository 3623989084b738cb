"""The ``probe`` subcommands of ``anytls-ref`` (wired in by __main__.py).

    anytls-ref probe server HOST:PORT -p PW [--insecure] [--sni NAME] [--target-host ADDRESS]
                            [--json] [--only CHECK]
    anytls-ref probe client -l HOST:PORT [-p PW] [--padding-scheme FILE] [--socks HOST:PORT]
                            [--wait SECONDS] [--json]

Both print one row per check (check, spec section, PASS/FAIL/INFO, detail), or JSON with
``--json``, and exit 1 if any check FAILed.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import ssl
import sys
import time
from collections.abc import Callable

from ..config.argv import seconds
from .client_probe import ClientProbe
from .client_script import PROBE_SCHEME
from .report import CheckResult, as_json, counts, exit_code, table
from .server_checks import CHECKS
from .server_probe import DEFAULT_TARGET_HOST, PasswordRefused, ServerProbe


def _target_host(text: str) -> str:
    """An IP address the probe can listen on and the server can dial. Not a name: the server
    could resolve it to another address than the probe's targets listen on."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None
    if address.is_unspecified or address.is_multicast:
        raise argparse.ArgumentTypeError(f"{text} is no address a server can dial")
    return text


def add_probe_parser(sub) -> None:
    """Add ``probe server`` and ``probe client`` to the subcommands ``sub``."""
    probe = sub.add_parser("probe", help="check an anytls server or client against the spec")
    roles = probe.add_subparsers(dest="probe_role", required=True, parser_class=type(probe))

    s = roles.add_parser("server", help="run the checks against an anytls server")
    s.add_argument("address", metavar="HOST:PORT", help="the server to check")
    s.add_argument("-p", "--password", required=True)
    s.add_argument("--insecure", action="store_true", help="do not verify its certificate")
    s.add_argument("--sni", help="TLS server name (default: HOST, or none with --insecure)")
    s.add_argument("--target-host", type=_target_host, default=DEFAULT_TARGET_HOST,
                   metavar="ADDRESS",
                   help="address of this machine for the probe's echo and refused targets, "
                        "which the server is asked to dial (default: 127.0.0.1, so the server "
                        "must run here)")
    s.add_argument("--only", action="append", metavar="CHECK",
                   choices=[c.name for c in CHECKS], help="run only this check (repeatable)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")

    c = roles.add_parser("client", help="run a probe server and check a client pointed at it")
    c.add_argument("-l", "--listen", required=True, help="HOST:PORT for the probe server")
    c.add_argument("-p", "--password", default="probe", help="password (default: probe)")
    c.add_argument("--padding-scheme", metavar="FILE",
                   help="scheme the probe server pushes (default: the probe's own)")
    c.add_argument("--socks", metavar="HOST:PORT",
                   help="the client's SOCKS5 port: the probe makes the traffic itself")
    c.add_argument("--wait", type=seconds, default=120.0, metavar="SECONDS",
                   help="without --socks, how long to wait for your requests (default 120)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_probe(args, *, host_port: Callable[..., tuple[str, int]],
              read_scheme: Callable[[str], bytes]) -> int:
    """Run ``probe server`` or ``probe client``; the helpers come from __main__ (they raise its
    UsageError for a bad address or scheme file)."""
    if args.probe_role == "server":
        return _probe_server(args, host_port)
    return _probe_client(args, host_port, read_scheme)


def _show(role: str, target: str, results: list[CheckResult], as_json_output: bool,
          notes: list[str] | None = None) -> int:
    if as_json_output:
        print(as_json(role, target, results, notes))
    else:
        n = counts(results)
        print(table(results))
        for note in notes or []:
            print(f"note: {note}")
        print(f"\nprobe {role} {target}: {n['PASS']} PASS, {n['FAIL']} FAIL, {n['INFO']} INFO")
    return exit_code(results)


#: How long ``probe client --socks`` waits for the client's SOCKS5 port to accept connections.
SOCKS_WAIT = 15.0


def _wait_for_port(address: tuple[str, int], timeout: float) -> bool:
    """True once ``address`` accepts a TCP connection (the client under test may start after
    the probe), False if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(address, timeout=1.0).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _error(text: str) -> int:
    print(f"anytls-ref: error: {text}", file=sys.stderr)
    return 1


def _probe_server(args, host_port) -> int:
    address = host_port(args.address, what="server address")
    probe = ServerProbe(address, args.password, insecure=args.insecure, sni=args.sni,
                        target_host=args.target_host)
    try:
        probe.start()
    except OSError as exc:  # an address, but not one of this machine's
        print(f"anytls-ref: error: cannot listen on --target-host {args.target_host}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    with probe:
        try:
            probe.preflight()
        except ssl.SSLError as exc:
            hint = "" if args.insecure else " (a self-signed certificate? try --insecure)"
            return _error(f"TLS with {args.address} failed: {exc}{hint}")
        except OSError as exc:
            return _error(f"cannot connect to {args.address}: {exc.strerror or exc}")
        try:
            probe.check_password()
        except PasswordRefused as exc:
            print(f"anytls-ref: error: authentication failed: {args.address} {exc}: wrong -p? "
                  "(no check can pass without the password)", file=sys.stderr)
            return 2
        results = probe.run(set(args.only) if args.only else None)
    return _show("server", args.address, results, args.json)


def _probe_client(args, host_port, read_scheme) -> int:
    listen = host_port(args.listen, what="listen address")
    socks = host_port(args.socks, what="SOCKS5 address") if args.socks else None
    scheme = read_scheme(args.padding_scheme) if args.padding_scheme else PROBE_SCHEME
    try:
        probe = ClientProbe(listen, args.password, scheme)
    except OSError as exc:
        print(f"anytls-ref: error: cannot listen on {args.listen}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    out = sys.stderr if args.json else sys.stdout  # --json: stdout is only the JSON
    with probe:
        if socks is not None:
            print(f"probe server on {probe.address[0]}:{probe.address[1]}; making the traffic "
                  f"through SOCKS5 {args.socks}", file=out, flush=True)
            if not _wait_for_port(socks, SOCKS_WAIT):
                return _error(f"nothing listens on {args.socks} after {SOCKS_WAIT:.0f} s")
            probe.drive(socks)
        else:
            print(probe.instructions(), file=out)
            print(f"Waiting up to {args.wait:.0f} s (Ctrl-C: stop waiting and show the results)",
                  file=out, flush=True)
            probe.wait_manual(args.wait)
        results = probe.evaluate()
    return _show("client", f"{probe.address[0]}:{probe.address[1]}", results, args.json,
                 probe.notes)

