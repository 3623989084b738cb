"""Live abuse campaign: malformed sessions against our server, then its threads and fds must be
back where they started.

The server runs in a child process (interop/faults.py ServerProcess, handshake deadline 0.5 s)
so its threads and file descriptors can be read from /proc/PID. Worker threads run SESSIONS
sessions, each of one kind picked at random (seeded); every GOOD_EVERY-th session is a good one
(authenticate, open a stream to an echo target, echo random bytes, close) that must succeed.
Each malformed kind also checks the server's answer where the protocol fixes it (cmdAlert for
SYN before Settings, a cmdSYNACK error then cmdFIN for a bad SocksAddr, silence then close for a
wrong password, a close at the handshake deadline for a connection that never speaks, ...).

Afterwards: the server's fds and threads must settle back to the baseline ± 2, its log must hold
no traceback and no ERROR line, and every good session must have succeeded.

    python interop/abuse.py [--sessions 10000] [--good-every 200] [--workers 8] [--seed 1]
                            [--json FILE]

tests/test_abuse.py runs a shortened campaign in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anytls_ref.auth import encode_auth, password_hash  # noqa: E402
from anytls_ref.frame import FRAME_HEADER, Command  # noqa: E402
from anytls_ref.net.sockutil import set_nodelay  # noqa: E402
from anytls_ref.probe.rawclient import RawClient, connect_v2  # noqa: E402
from anytls_ref.probe.scripting import frame  # noqa: E402
from anytls_ref.probe.targets import EchoServer  # noqa: E402
from anytls_ref.settings import ClientSettings  # noqa: E402
from interop.faults import ServerProcess  # noqa: E402

PASSWORD = "abuse campaign password"
HANDSHAKE_TIMEOUT = 0.5
#: how long any single expectation waits
WAIT = 5.0


class Unexpected(Exception):
    """The server answered a malformed session in a way the protocol does not allow."""


@dataclass
class Ctx:
    server: tuple[str, int]
    echo: tuple[str, int]
    rng: random.Random


# ---- helpers -------------------------------------------------------------------------------------


def _tcp(ctx: Ctx) -> socket.socket:
    sock = socket.create_connection(ctx.server, timeout=WAIT)
    set_nodelay(sock)
    return sock


def _closed_by_server(sock: socket.socket, timeout: float = WAIT) -> bytes:
    """Read until the server closes; returns what it sent. Unexpected if it stays open."""
    sock.settimeout(timeout)
    got = b""
    try:
        while data := sock.recv(1 << 16):
            got += data
    except (ConnectionError, ssl.SSLError):
        pass
    except TimeoutError:
        raise Unexpected(f"connection still open after {timeout} s") from None
    return got


def _expect_closed_silently(peer: RawClient) -> str:
    if not peer.closed_within(WAIT):
        raise Unexpected("still open")
    if peer.received:
        raise Unexpected(f"frames after a failed authentication: {peer.received[:3]}")
    return "closed without a frame"


def _authed(ctx: Ctx, version: int = 2) -> RawClient:
    return connect_v2(ctx.server, PASSWORD, version=version)


def _send_then_eof(peer: RawClient, data: bytes) -> str:
    """``data``, then our EOF: the server must close the connection."""
    peer.send_raw(data)
    peer.half_close()
    if not peer.closed_within(WAIT):
        raise Unexpected("still open")
    return "closed"


def _rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _client_hello() -> bytes:
    """The bytes of a real TLS ClientHello (from an in-memory TLS client)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


CLIENT_HELLO = _client_hello()


# ---- the malformed sessions ----------------------------------------------------------------------


def random_bytes_instead_of_tls(ctx: Ctx) -> str:
    with _tcp(ctx) as sock:
        sock.sendall(ctx.rng.randbytes(ctx.rng.randint(1, 3000)))
        _closed_by_server(sock)
    return "closed"


def truncated_client_hello(ctx: Ctx) -> str:
    with _tcp(ctx) as sock:
        sock.sendall(CLIENT_HELLO[: ctx.rng.randrange(1, len(CLIENT_HELLO))])
        sock.shutdown(socket.SHUT_WR)
        _closed_by_server(sock)
    return "closed"


def reset_during_handshake(ctx: Ctx) -> str:
    sock = _tcp(ctx)
    sock.sendall(CLIENT_HELLO[: ctx.rng.randrange(0, len(CLIENT_HELLO))])
    _rst(sock)
    return "reset"


def never_speaks_tcp(ctx: Ctx) -> str:
    start = time.monotonic()
    with _tcp(ctx) as sock:
        _closed_by_server(sock, HANDSHAKE_TIMEOUT + WAIT)
    took = time.monotonic() - start
    if took > HANDSHAKE_TIMEOUT + 2.0:
        raise Unexpected(f"closed after {took:.2f} s, deadline {HANDSHAKE_TIMEOUT}")
    return "closed at the deadline"


def never_speaks_after_tls(ctx: Ctx) -> str:
    start = time.monotonic()
    with RawClient(ctx.server) as peer:
        if not peer.closed_within(HANDSHAKE_TIMEOUT + WAIT):
            raise Unexpected("still open")
    took = time.monotonic() - start
    if took > HANDSHAKE_TIMEOUT + 2.0:
        raise Unexpected(f"closed after {took:.2f} s, deadline {HANDSHAKE_TIMEOUT}")
    return "closed at the deadline"


def random_bytes_instead_of_auth(ctx: Ctx) -> str:
    with RawClient(ctx.server) as peer:
        peer.send_raw(ctx.rng.randbytes(ctx.rng.randint(1, 3000)))
        return _expect_closed_silently(peer)


def wrong_hash(ctx: Ctx) -> str:
    with RawClient(ctx.server) as peer:
        wrong = password_hash(f"wrong {ctx.rng.random()}")
        settings = frame(Command.SETTINGS, 0, ClientSettings(2, "abuse", None).encode())
        peer.send_raw(encode_auth(wrong, ctx.rng.randint(0, 100)) + settings)
        return _expect_closed_silently(peer)


def truncated_auth(ctx: Ctx) -> str:
    """Part of the request, then our side closes: short of the hash, short of the length, or
    short of padding0."""
    right = encode_auth(password_hash(PASSWORD), 500)
    cut = ctx.rng.choice([ctx.rng.randint(1, 31), 32, 33, ctx.rng.randint(34, 300)])
    with RawClient(ctx.server) as peer:
        return _send_then_eof(peer, right[:cut])


def truncated_frame(ctx: Ctx) -> str:
    """Authenticated, then half a frame header or half a frame's data, then we close."""
    with _authed(ctx) as peer:
        whole = FRAME_HEADER.pack(Command.PSH, 1, 5000) + bytes(100)
        return _send_then_eof(peer, whole[: ctx.rng.randint(1, len(whole) - 1)])


def unknown_commands_with_data(ctx: Ctx) -> str:
    """Unknown commands and data on SYN/FIN/Heart*: skipped; the session stays in sync."""
    with _authed(ctx) as peer:
        junk = b""
        for _ in range(ctx.rng.randint(1, 8)):
            command = ctx.rng.choice([*range(11, 256), Command.FIN, Command.HEART_RESPONSE,
                                      Command.WASTE])
            n = ctx.rng.randint(0, 3000)
            junk += FRAME_HEADER.pack(command, ctx.rng.randrange(1 << 32), n)
            junk += ctx.rng.randbytes(n)
        peer.send_raw(junk)
        peer.send_frame(Command.HEART_REQUEST, 7)
        peer.expect(Command.HEART_RESPONSE, sid=7, timeout=WAIT)
    return "skipped, still in sync"


def bad_socksaddr(ctx: Ctx) -> str:
    rng = ctx.rng
    bad = rng.choice([
        bytes([rng.choice([0, 2, 5, 6, 7, 0x7F, 0xFF])]) + rng.randbytes(rng.randint(1, 40)),
        b"\x03\x05ab\x00cd\x00\x50",  # a NUL inside the name
        b"\x03\x03a b\x00\x50",  # a space inside the name
        b"\x03\x00\x00\x50",  # an empty name
        b"\x03\x04\xff\xfe\xfd\xfc\x00\x50",  # not ASCII
    ])
    with _authed(ctx) as peer:
        peer.send_raw(frame(Command.SYN, 1) + frame(Command.PSH, 1, bad))
        synack = peer.expect(Command.SYNACK, sid=1, timeout=WAIT)
        if not synack.data:
            raise Unexpected("an empty (successful) SYNACK for a bad address")
        peer.expect(Command.FIN, sid=1, timeout=WAIT)
    return "SYNACK error, FIN"


def syn_before_settings(ctx: Ctx) -> str:
    with RawClient(ctx.server) as peer:
        peer.send_auth(PASSWORD)
        peer.send_frame(Command.SYN, 1)
        peer.expect(Command.ALERT, timeout=WAIT)
        if not peer.closed_within(WAIT):
            raise Unexpected("still open after the Alert")
    return "Alert, closed"


def psh_without_syn(ctx: Ctx) -> str:
    with _authed(ctx) as peer:
        peer.send_frame(Command.PSH, ctx.rng.randint(5, 1000), b"data nobody opened")
        peer.expect(Command.ALERT, timeout=WAIT)
        if not peer.closed_within(WAIT):
            raise Unexpected("still open after the Alert")
    return "Alert, closed"


def reset_mid_stream(ctx: Ctx) -> str:
    peer = _authed(ctx)
    try:
        peer.open_stream(1, *ctx.echo)
        peer.expect(Command.SYNACK, sid=1, timeout=WAIT)
        peer.send_data(1, ctx.rng.randbytes(ctx.rng.randint(1, 100_000)))
        if ctx.rng.random() < 0.5:
            peer.read_frame(WAIT)  # some of the echo
    finally:
        peer.reset()
    return "reset"


def random_frames(ctx: Ctx) -> str:
    """Well-framed random commands, sids and data after a good start; then we close. (No SYN:
    random data after one could be a valid address on the internet, which the server would
    dial; bad_socksaddr covers SYN with a bad address.)"""
    rng = ctx.rng
    with _authed(ctx) as peer:
        out = b""
        for _ in range(rng.randint(1, 20)):
            command = rng.choice([0, *range(2, 12), 42, 255])
            data = rng.randbytes(rng.choice([0, 0, rng.randint(1, 50), rng.randint(1, 5000)]))
            out += FRAME_HEADER.pack(command, rng.randrange(4), len(data)) + data
        peer.send_raw(out)
        frames, how = peer.read_until(lambda f: False, timeout=0.05)
    return "closed by server" if how == "closed" else "open"


def close_mid_stream(ctx: Ctx) -> str:
    """A stream with data in flight both ways, then a plain close (no FIN frame)."""
    peer = _authed(ctx)
    try:
        peer.open_stream(1, *ctx.echo)
        peer.send_data(1, ctx.rng.randbytes(ctx.rng.randint(1, 200_000)))
    finally:
        peer.close()
    return "closed"


KINDS = {f.__name__: f for f in (
    random_bytes_instead_of_tls, truncated_client_hello, reset_during_handshake,
    never_speaks_tcp, never_speaks_after_tls, random_bytes_instead_of_auth, wrong_hash,
    truncated_auth, truncated_frame, unknown_commands_with_data, bad_socksaddr,
    syn_before_settings, psh_without_syn, reset_mid_stream, random_frames, close_mid_stream,
)}


def good_session(ctx: Ctx) -> str:
    payload = ctx.rng.randbytes(ctx.rng.randint(1, 65536))
    with _authed(ctx) as peer:
        peer.open_stream(1, *ctx.echo)
        synack = peer.expect(Command.SYNACK, sid=1, timeout=WAIT)
        if synack.data:
            raise Unexpected(f"SYNACK error {synack.data!r}")
        peer.send_data(1, payload)
        if peer.recv_data(1, len(payload), timeout=WAIT) != payload:
            raise Unexpected("echo differs")
        peer.fin(1)
    return "echoed"


# ---- the campaign --------------------------------------------------------------------------------


@dataclass
class Report:
    sessions: int = 0
    seconds: float = 0.0
    kinds: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unexpected: list[str] = field(default_factory=list)
    good_ok: int = 0
    good_failed: list[str] = field(default_factory=list)
    baseline: tuple[int, int] = (0, 0)
    peak: tuple[int, int] = (0, 0)
    after: tuple[int, int] = (0, 0)
    settle_seconds: float = 0.0
    rss_kib: tuple[int, int] = (0, 0)
    log_errors: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not (self.unexpected or self.good_failed or self.log_errors)

    def as_dict(self) -> dict:
        return {
            "sessions": self.sessions, "seconds": round(self.seconds, 1),
            "kinds": {k: dict(v) for k, v in sorted(self.kinds.items())},
            "good_ok": self.good_ok, "good_failed": self.good_failed,
            "unexpected": self.unexpected[:20], "unexpected_count": len(self.unexpected),
            "fds_threads": {"baseline": self.baseline, "peak": self.peak, "after": self.after,
                            "settle_seconds": round(self.settle_seconds, 2)},
            "rss_kib": {"baseline": self.rss_kib[0], "after": self.rss_kib[1]},
            "log_errors": self.log_errors[:10],
        }

    def text(self) -> str:
        lines = [f"{'kind':30} {'runs':>6}  outcomes"]
        for kind, outcomes in sorted(self.kinds.items()):
            lines.append(f"{kind:30} {sum(outcomes.values()):>6}  "
                         + ", ".join(f"{o}: {n}" for o, n in outcomes.most_common()))
        lines += [
            f"sessions: {self.sessions} in {self.seconds:.1f} s "
            f"({self.sessions / self.seconds:.0f}/s); good sessions ok: {self.good_ok}, "
            f"failed: {len(self.good_failed)}; unexpected answers: {len(self.unexpected)}",
            f"server (fds, threads): baseline {self.baseline}, peak {self.peak}, after "
            f"{self.after} (settled in {self.settle_seconds:.2f} s); RSS {self.rss_kib[0]} KiB "
            f"→ {self.rss_kib[1]} KiB; ERROR/traceback lines in its log: {len(self.log_errors)}",
        ]
        lines += [f"UNEXPECTED {u}" for u in self.unexpected[:10]]
        lines += [f"GOOD FAILED {g}" for g in self.good_failed[:10]]
        lines += [f"LOG {e}" for e in self.log_errors[:10]]
        return "\n".join(lines)


def run_campaign(sessions: int, *, good_every: int = 200, workers: int = 8, seed: int = 1,
                 log_dir: str | os.PathLike | None = None, settle_timeout: float = 15.0) -> Report:
    report = Report(sessions=sessions)
    with tempfile.TemporaryDirectory(prefix="anytls-abuse-") as tmp:
        log_path = Path(log_dir or tmp) / "abuse-server.log"
        echo = EchoServer()
        server = ServerProcess(PASSWORD, log_path=log_path, handshake_timeout=HANDSHAKE_TIMEOUT,
                               dial_timeout=2.0, address_timeout=2.0)
        try:
            _run(report, server, echo.address, sessions, good_every, workers, seed,
                 settle_timeout)
        finally:
            server.kill()
            echo.close()
        for line in log_path.read_text(errors="replace").splitlines():
            if " ERROR " in line or "Traceback" in line or "CRITICAL" in line:
                report.log_errors.append(line)
    return report


def _run(report: Report, server: ServerProcess, echo: tuple[str, int], sessions: int,
         good_every: int, workers: int, seed: int, settle_timeout: float) -> None:
    start_counts = server.counts()
    warm = Ctx(server.address, echo, random.Random(seed))
    good_session(warm)  # warm up: lazily created objects belong in the baseline
    report.baseline = server.settle(start_counts, slack=0, timeout=settle_timeout)
    report.rss_kib = (server.rss_kib(), 0)
    peak = list(report.baseline)
    done = threading.Event()

    def monitor() -> None:
        while not done.wait(0.05):
            try:
                for i, n in enumerate(server.counts()):
                    peak[i] = max(peak[i], n)
            except OSError:
                return

    lock = threading.Lock()

    def one(index: int) -> None:
        rng = random.Random(seed * 1_000_003 + index)
        ctx = Ctx(server.address, echo, rng)
        good = index % good_every == 0
        name = "good_session" if good else rng.choice(list(KINDS))
        try:
            outcome = (good_session if good else KINDS[name])(ctx)
            error = None
        except Unexpected as exc:
            outcome, error = "UNEXPECTED", f"{name} #{index}: {exc}"
        except AssertionError as exc:  # a RawClient expectation
            outcome, error = "UNEXPECTED", f"{name} #{index}: {exc}"
        except (OSError, ssl.SSLError) as exc:
            # the server may close or reset a malformed session at any point; for a good
            # session that is a failure
            outcome, error = f"socket: {type(exc).__name__}", None
            if good:
                error = f"{name} #{index}: {exc!r}"
        with lock:
            report.kinds[name][outcome] += 1
            if good and error is None:
                report.good_ok += 1
            elif good:
                report.good_failed.append(error)
            elif error is not None:
                report.unexpected.append(error)

    watcher = threading.Thread(target=monitor, name="abuse-monitor")
    watcher.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="abuse") as pool:
            for future in [pool.submit(one, i) for i in range(1, sessions + 1)]:
                future.result()
    finally:
        report.seconds = time.monotonic() - started
        done.set()
        watcher.join()
    report.peak = tuple(peak)
    settle_start = time.monotonic()
    report.after = server.settle(report.baseline, slack=2, timeout=settle_timeout)
    report.settle_seconds = time.monotonic() - settle_start
    # one more good session: the server still serves after it all
    good_session(Ctx(server.address, echo, random.Random(seed + 1)))
    report.good_ok += 1
    report.after = server.settle(report.baseline, slack=2, timeout=settle_timeout)
    try:  # the last closes may still be finishing: report the exact figure when it comes
        report.after = server.settle(report.baseline, slack=0, timeout=5.0)
    except AssertionError:
        pass
    report.rss_kib = (report.rss_kib[0], server.rss_kib())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--good-every", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--log-dir", help="keep the server log here")
    args = parser.parse_args(argv)
    report = run_campaign(args.sessions, good_every=args.good_every, workers=args.workers,
                          seed=args.seed, log_dir=args.log_dir)
    print(report.text())
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    print("campaign:", "PASS" if report.ok() else "FAIL")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
