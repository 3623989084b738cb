"""Check the peer launchers: real client -> real server on loopback, fetch through SOCKS5.

    python interop/selfcheck.py            the default cases (each peer with itself, a few cross
                                           pairs, custom padding, disable-reuse)
    python interop/selfcheck.py --all      every installed client x every installed server
    python interop/selfcheck.py --pair sing-box:anytls-go   (CLIENT:SERVER, repeatable)

For each case: start the server and the client, then through the client's SOCKS5 port fetch a
200 KiB page from a local HTTP server three times in a row (the 2nd and 3rd go over a reused
session where the client reuses one), and, where both sides claim UDP, send a datagram to a local
UDP echo server via SOCKS5 UDP ASSOCIATE (UoT). Variants: "padding" = the server pushes a custom
padding scheme (the client gets UpdatePaddingScheme); "no-reuse" = client disable-reuse.

A pair listed in KNOWN_ISSUES that fails is reported "known" (a peer-vs-peer incompatibility
found here, with its cause) and does not fail the run; anything else that fails is "FAIL".
Prints a table; exit 1 on any FAIL. A peer not installed is skipped, or is a failure when
ANYTLS_REQUIRE_PEERS=1. Logs of a failed case are kept (the path is printed). Stdlib and
anytls_ref's SOCKS5 client only (no PySocks).
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import peers as P  # noqa: E402

from anytls_ref.net.socks_client import Socks5Udp, socks5_connect  # noqa: E402

PASSWORD = "selfcheck-pw"
BODY = hashlib.sha256(b"anytls").digest() * (200 * 1024 // 32)  # 200 KiB
CUSTOM_PADDING = "stop=4\n0=40-80\n1=300-600\n2=200-300,c,500-1000\n3=100-900"

DEFAULT_CASES = [  # (client, server, variant)
    ("anytls-go", "anytls-go", ""), ("sing-box", "sing-box", ""), ("mihomo", "mihomo", ""),
    ("ssrlive", "ssrlive", ""), ("anytls-rs", "anytls-rs", ""),
    ("anytls-go", "sing-box", ""), ("sing-box", "anytls-go", ""), ("mihomo", "anytls-go", ""),
    ("anytls-go", "mihomo", ""), ("sing-box", "mihomo", ""),
    ("mihomo", "ssrlive", "no-reuse"),  # disable-reuse avoids sid 2, which ssrlive rejects
]

_GO = ("anytls-go", "sing-box", "mihomo")
_NO_SYN = ("ssrlive 0.3.2 client never sends SYN (opens sid 1 with a PSH, bin/client.rs + "
           "src/proxy/session/inner.rs); Go and anytls-rs servers drop PSH for an unknown sid")
_SPLIT_AUTH = ("anytls-rs 0.5.4 client writes sha256 and padding length with separate "
               "write_all calls = separate TLS records (src/util/auth.rs:63-77); Go servers "
               "read the auth with one read: 'EOF: read padding length'")
_SID2 = ("reuse opens sid 2; ssrlive 0.3.2 server sends Alert 'unsupported sid 2' and closes "
         "the session; this client does not retry (the next stream uses a new session)")
KNOWN_ISSUES: dict[tuple[str, str], str] = {
    **{("ssrlive", s): _NO_SYN for s in (*_GO, "anytls-rs")},
    **{("anytls-rs", s): _SPLIT_AUTH for s in _GO},
    **{(c, "ssrlive"): _SID2 for c in (*_GO, "anytls-rs")},
}


# --------------------------------------------------------------------------- local targets


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def start_targets():
    httpd = http.server.ThreadingHTTPServer((P.LOOPBACK, 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((P.LOOPBACK, 0))

    def echo():
        while True:
            try:
                data, addr = udp.recvfrom(65535)
                udp.sendto(b"echo:" + data, addr)
            except OSError:
                return
    threading.Thread(target=echo, daemon=True).start()
    return httpd, udp


def fetch(socks_port: int, http_port: int, timeout: float = 20.0) -> None:
    """GET / through SOCKS5; read exactly Content-Length bytes (do not wait for EOF: anytls-rs
    0.5.4 never sends FIN when the target closes, so EOF would not come)."""
    with socks5_connect((P.LOOPBACK, socks_port), (P.LOOPBACK, http_port), timeout=timeout) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before HTTP headers, got {data[:60]!r}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0] + b" ":
            raise ConnectionError(f"bad HTTP answer {head[:60]!r}")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    if body != BODY:
        raise ConnectionError(f"body mismatch: got {len(body)} bytes, want {len(BODY)}")


def udp_echo(socks_port: int, echo_port: int, timeout: float = 10.0) -> None:
    with Socks5Udp((P.LOOPBACK, socks_port), timeout=timeout) as association:
        payload = b"ping-" + os.urandom(8).hex().encode()
        deadline = time.monotonic() + timeout
        while True:  # UDP: resend a few times in case the first datagram raced the setup
            association.sendto(payload, (P.LOOPBACK, echo_port))
            association.udp.settimeout(2.0)
            try:
                data, _ = association.recvfrom()
                break
            except socket.timeout:
                if time.monotonic() > deadline:
                    raise TimeoutError("no UDP answer") from None
    if not data.endswith(b"echo:" + payload):
        raise ConnectionError(f"bad UDP answer {data[:40]!r}")


# --------------------------------------------------------------------------- one case


def run_case(client: P.Peer, server: P.Peer, workdir: Path, http_port: int, echo_port: int,
             variant: str = "") -> dict:
    res = {"client": client.id, "server": server.id, "variant": variant or "-",
           "tcp": "", "udp": "", "error": "", "secs": 0.0}
    padding = CUSTOM_PADDING if variant == "padding" else None
    sp, cp = P.free_port(), P.free_port()
    procs = []
    t0 = time.monotonic()
    try:
        srv = server.start_server(workdir, sp, PASSWORD, padding_scheme=padding)
        procs.append(srv)
        P.wait_for_port(P.LOOPBACK, sp, 15, srv)
        cli = client.start_client(workdir, cp, sp, PASSWORD, disable_reuse=variant == "no-reuse")
        procs.append(cli)
        P.wait_for_port(P.LOOPBACK, cp, 15, cli)
        ok = 0
        for i in range(3):
            try:
                fetch(cp, http_port)
                ok += 1
            except Exception as e:  # noqa: BLE001
                res["error"] = res["error"] or f"fetch {i + 1}: {type(e).__name__}: {e}"
            time.sleep(0.2)
        res["tcp"] = f"{ok}/3"
        if not (client.client_udp and server.server_udp):
            res["udp"] = "n/a"
        elif variant:
            res["udp"] = "-"
        else:
            try:
                udp_echo(cp, echo_port)
                res["udp"] = "ok"
            except Exception as e:  # noqa: BLE001
                res["udp"] = "FAIL"
                res["error"] = res["error"] or f"udp: {type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001
        res["tcp"] = res["tcp"] or "FAIL"
        res["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
    finally:
        for p in reversed(procs):
            P.stop(p)
        res["secs"] = round(time.monotonic() - t0, 1)
    passed = res["tcp"] == "3/3" and res["udp"] != "FAIL"
    known = None if variant == "no-reuse" else KNOWN_ISSUES.get((client.id, server.id))
    res["result"] = "ok" if passed else ("known" if known else "FAIL")
    if passed and known:
        res["result"] = "ok?"  # a known issue did not show: re-check KNOWN_ISSUES
    res["known"] = known or ""
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="every client x every server")
    ap.add_argument("--pair", action="append", default=[], metavar="CLIENT:SERVER")
    ap.add_argument("--no-variants", action="store_true",
                    help="skip the custom-padding and disable-reuse rows")
    ap.add_argument("--keep", action="store_true", help="keep the work folder even on success")
    ap.add_argument("--debug", action="store_true", help="peers log at debug level")
    args = ap.parse_args(argv)

    peers = P.all_peers(debug=args.debug)
    require = os.environ.get("ANYTLS_REQUIRE_PEERS") == "1"
    missing = [p.id for p in peers.values() if not p.installed()]
    if missing:
        print(f"not installed in {P.peers_dir()}: {', '.join(missing)} (bash interop/peers.sh)")
        if require:
            print("ANYTLS_REQUIRE_PEERS=1: missing peers are a failure")
            return 1

    if args.pair:
        cases = [(*p.split(":", 1), "") for p in args.pair]
    elif args.all:
        cases = [(c, s, "") for c in peers for s in peers]
    else:
        cases = [c for c in DEFAULT_CASES if args.no_variants is False or not c[2]]
    if not args.no_variants and not args.pair:
        cases += [(i, i, "padding") for i, p in peers.items() if p.server_custom_padding]
    for c, s, _ in cases:
        if c not in peers or s not in peers:
            ap.error(f"unknown peer in {c}:{s}; known: {', '.join(peers)}")

    httpd, udp = start_targets()
    work = Path(tempfile.mkdtemp(prefix="anytls-selfcheck-"))
    rows, skipped = [], 0
    try:
        for c, s, variant in cases:
            client, server = peers[c], peers[s]
            if not (client.installed() and server.installed()):
                skipped += 1
                continue
            case_dir = work / f"{c}--{s}{'--' + variant if variant else ''}"
            case_dir.mkdir()
            r = run_case(client, server, case_dir, httpd.server_address[1], udp.getsockname()[1],
                         variant)
            r["dir"] = case_dir
            rows.append(r)
            print(f"  {r['result']:5} {c} -> {s} {variant} {r['secs']}s {r['error']}", flush=True)
    finally:
        httpd.shutdown()
        udp.close()

    cols = ("client", "server", "variant", "tcp", "udp", "secs", "result")
    table = [cols] + [(r["client"], r["server"], r["variant"], r["tcp"], r["udp"],
                       str(r["secs"]), r["result"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    print()
    for i, row in enumerate(table):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    failed = [r for r in rows if r["result"] == "FAIL"]
    known = [r for r in rows if r["result"] == "known"]
    for r in known:
        print(f"\nknown {r['client']} -> {r['server']}: {r['error']}\n  cause: {r['known']}")
    for r in failed:
        print(f"\nFAIL {r['client']} -> {r['server']} {r['variant']}: {r['error']}\n"
              f"  logs: {r['dir']}")
    for r in rows:
        if r["result"] == "ok?":
            print(f"\nnote: {r['client']} -> {r['server']} passed despite KNOWN_ISSUES entry")
    if known:
        print(f"\n{len(known)} known peer incompatibilities (not counted as failures)")
    print(f"\n{len(rows) - len(failed) - len(known)} passed, {len(failed)} failed"
          + (f", {skipped} skipped" if skipped else ""))
    if failed or args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed or (require and skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
