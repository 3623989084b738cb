"""The interop matrix: every anytls implementation as client × every one as server × 7 scenarios,
two more for our client against the Go servers, and our client with ``--wait-synack``.

A *cell* is (client implementation, server implementation); a *case* is a cell and a scenario.
Each case starts its own server and client (our side runs in this process, a peer runs as a
subprocess from ``interop.peers``), drives traffic through the client's local SOCKS5 port to
targets on 127.0.0.1, observes what it can on our side, and stops everything.

Scenarios:
  tcp             10 MiB through an echo target, both directions at once, sha256-checked
  http            GET of a local HTTP server
  reuse           3 sequential connections carried by one TLS connection (observed on our side)
  udp             UoT: 50 datagrams to two UDP echo targets, each reply from the right source
  padding-update  the server has a custom scheme; the client's next session sends its md5
                  (observed on our side)
  wrong-password  the client's request fails within 5 s (no hang)
  refused         a closed target port: the client's connection fails within 5 s

Our client answers its application before the server's cmdSYNACK, as the Go clients do
(spec_notes/decisions.md D34). Against the three Go servers (GO_SERVERS) it also runs two
stricter forms of "reuse" and "refused" that check what answering early must not break:
  early-reuse    5 TCP echo streams one after another: sids 1-5 on one session, and each
                 stream's cmdSYNACK was read (none is left to the 3 s SYNACK watchdog)
  early-refused  after an echo on sid 1, a closed target port on the reused session: the
                 SOCKS5 reply is success, the connection then closes within 2 s with no data,
                 and the next stream (sid 3) still works on the same session
The client variant "anytls_ref+wait-synack" is our client with ClientConfig.wait_synack
(``--wait-synack``: the SOCKS5 reply waits for cmdSYNACK); it runs tcp, reuse and refused
against the Go servers, and its refused must be a SOCKS5 error reply.

Results: "pass", "fail", or "unsupported-by-peer" (the peer lacks the feature; the detail cites
where). A case never reports "pass" unless it ran and its checks held.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import socks

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.socks_client import Socks5Udp
from anytls_ref.net.sockutil import shutdown_quietly
from anytls_ref.net.stream import Stream
from anytls_ref.padding import DEFAULT, parse_scheme
from anytls_ref.probe.scripting import ExpectationFailed, eventually
from anytls_ref.probe.targets import EchoServer, refused_port
from anytls_ref.socksaddr import SocksAddr

from . import peers as peer_mod
from .targets import HTTP_BODY, HTTPTarget, UdpEcho

log = logging.getLogger("interop")

OURS = "anytls_ref"
#: our client with --wait-synack (decisions.md D34): a client-only variant of OURS, started by
#: the same code with ClientConfig.wait_synack set (the name bench.py uses for it too)
WAIT_SYNACK = "anytls_ref+wait-synack"
IMPLEMENTATIONS = [OURS, WAIT_SYNACK, "anytls-go", "sing-box", "mihomo", "ssrlive", "anytls-rs"]
SCENARIOS = ["tcp", "http", "reuse", "udp", "padding-update", "wrong-password", "refused"]
#: the Go implementations: where our client's early answer is checked more strictly, and what
#: WAIT_SYNACK is paired with
GO_SERVERS = ["anytls-go", "sing-box", "mihomo"]
#: our client's stricter forms of "reuse" and "refused", against GO_SERVERS
EARLY_SCENARIOS = ["early-reuse", "early-refused"]
#: WAIT_SYNACK's scenarios: where waiting for cmdSYNACK makes a difference
WAIT_SYNACK_SCENARIOS = ["tcp", "reuse", "refused"]
ALL_SCENARIOS = SCENARIOS + EARLY_SCENARIOS
PASSWORD = "interop-password"
#: A scheme unlike the default, so an update is visible: 3 packets, padding0 of 40 bytes.
CUSTOM_SCHEME = "stop=3\n0=40-40\n1=300-500\n2=200-300,c,400-500"
CUSTOM_MD5 = parse_scheme(CUSTOM_SCHEME.encode()).md5
TCP_BYTES = 10 * 1024 * 1024
FAIL_WITHIN = 5.0
#: early-refused: the most a refused target's connection may stay open after the success reply
EARLY_CLOSE_WITHIN = 2.0
#: early-reuse: echo streams, one after another
EARLY_STREAMS = 5
#: how long a session may take to go back to the idle pool after its stream ended
IDLE_WITHIN = 2.0


def is_ours(impl: str) -> bool:
    """Our code (run in this process), as opposed to a peer started from interop.peers."""
    return impl in (OURS, WAIT_SYNACK)


class CaseFailed(Exception):
    """A scenario's check did not hold; the message says which."""


class UnsupportedByPeer(Exception):
    """The peer lacks what the scenario needs; the message cites where that is documented."""


@dataclass
class CaseResult:
    client: str
    server: str
    scenario: str
    result: str  #: pass | fail | unsupported-by-peer
    detail: str
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


# ---- what a scenario needs from each side ------------------------------------------------


@dataclass
class Setup:
    """How one case starts its two sides."""

    server_scheme: str | None = None  #: a custom padding scheme for the server
    client_password: str = PASSWORD
    client_disable_reuse: bool = False


class ServerSide:
    """A running server of either kind. ``ours`` is our Server object, else None."""

    def __init__(self, port: int, ours: Server | None) -> None:
        self.port = port
        self.ours = ours


class ObservedClient(Client):
    """Our client, keeping every stream it hands to its SOCKS5/HTTP listener (in order), so a
    scenario can see its stream id, session and whether its cmdSYNACK has come."""

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config)
        self.opened: list[Stream] = []

    def open_stream(self, target: SocksAddr, initial: bytes = b"", **options) -> Stream:
        stream = super().open_stream(target, initial, **options)
        self.opened.append(stream)
        return stream


class ClientSide:
    def __init__(self, socks_port: int, ours: ObservedClient | None) -> None:
        self.socks_port = socks_port
        self.ours = ours


@contextlib.contextmanager
def peer_process(start: Callable[[int], subprocess.Popen]) -> Iterator[int]:
    """A real peer started by ``start(port)`` on a free port: the port once it listens; the
    process is stopped at the end. A peer that lacks what the case needs → UnsupportedByPeer."""
    port = peer_mod.free_port()
    try:
        proc = start(port)
    except peer_mod.Unsupported as exc:
        raise UnsupportedByPeer(str(exc)) from None
    try:
        peer_mod.wait_for_port("127.0.0.1", port, proc=proc)
        yield port
    finally:
        peer_mod.stop(proc)


@contextlib.contextmanager
def running_server(impl: str, setup: Setup, workdir: Path) -> Iterator[ServerSide]:
    if impl == OURS:
        cert, key = peer_mod.make_cert(workdir)
        scheme = setup.server_scheme.encode() if setup.server_scheme else DEFAULT.raw
        server = Server(ServerConfig(("127.0.0.1", 0), PASSWORD, str(cert), str(key),
                                     padding_scheme=scheme))
        with server:
            yield ServerSide(server.address[1], server)
        return
    peer = peer_mod.get_peer(impl)
    cert, key = peer_mod.make_cert(workdir)
    with peer_process(lambda port: peer.start_server(workdir, port, PASSWORD,
                                                     setup.server_scheme, cert, key)) as port:
        yield ServerSide(port, None)


@contextlib.contextmanager
def running_client(impl: str, setup: Setup, server_port: int,
                   workdir: Path) -> Iterator[ClientSide]:
    if is_ours(impl):
        client = ObservedClient(ClientConfig(("127.0.0.1", server_port), setup.client_password,
                                             sni="localhost", insecure=True,
                                             disable_reuse=setup.client_disable_reuse,
                                             wait_synack=impl == WAIT_SYNACK))
        with ProxyInbound(("127.0.0.1", 0), client) as inbound:
            yield ClientSide(inbound.address[1], client)
        return
    peer = peer_mod.get_peer(impl)
    with peer_process(lambda port: peer.start_client(
            workdir, port, server_port, setup.client_password,
            disable_reuse=setup.client_disable_reuse)) as port:
        yield ClientSide(port, None)


# ---- traffic helpers -----------------------------------------------------------------------


def socks_tcp(client: ClientSide, target: tuple[str, int], timeout: float = 10.0) -> socks.socksocket:
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", client.socks_port, rdns=True)
    sock.settimeout(timeout)
    sock.connect(target)
    return sock


def http_get(client: ClientSide, target: HTTPTarget, timeout: float = 10.0) -> bytes:
    """GET / through SOCKS5; returns the body (raises on anything but a 200 with our body)."""
    with contextlib.closing(socks_tcp(client, target.address, timeout)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0] + b" ":
        raise CaseFailed(f"unexpected HTTP response {head[:60]!r}")
    if not body.startswith(HTTP_BODY):
        raise CaseFailed(f"HTTP body differs ({len(body)} bytes)")
    return body


def sessions_seen(client: ClientSide, server: ServerSide) -> int | None:
    """TLS sessions made so far, seen from our side (our server preferred)."""
    if server.ours is not None:
        return server.ours.stats.sessions
    if client.ours is not None:
        return client.ours.stats.sessions
    return None


# ---- scenarios -------------------------------------------------------------------------------


def scenario_tcp(client: ClientSide, server: ServerSide, work: Path) -> str:
    payload = os.urandom(TCP_BYTES)
    expected = hashlib.sha256(payload).hexdigest()
    echo = EchoServer()
    try:
        with contextlib.closing(socks_tcp(client, echo.address, timeout=60)) as sock:
            sender_error: list[BaseException] = []

            def send() -> None:
                try:
                    sock.sendall(payload)
                except OSError as exc:
                    sender_error.append(exc)

            sender = threading.Thread(target=send, name="interop-tcp-send")
            sender.start()
            digest, received = hashlib.sha256(), 0
            try:
                while received < TCP_BYTES:
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        break
                    digest.update(chunk)
                    received += len(chunk)
            finally:
                if received < TCP_BYTES:
                    # unblock the sender; the peer may have closed already, which is no news
                    shutdown_quietly(sock)
                sender.join()
    finally:
        echo.close()
    if sender_error:
        raise CaseFailed(f"upload failed: {sender_error[0]}")
    if received != TCP_BYTES or digest.hexdigest() != expected:
        raise CaseFailed(f"echo returned {received} of {TCP_BYTES} bytes or a different sha256")
    return f"{TCP_BYTES >> 20} MiB each way, sha256 ok"


def scenario_http(client: ClientSide, server: ServerSide, work: Path) -> str:
    target = HTTPTarget()
    try:
        http_get(client, target)
    finally:
        target.close()
    return "200 OK, body intact"


def scenario_reuse(client: ClientSide, server: ServerSide, work: Path) -> str:
    target = HTTPTarget()
    try:
        before = sessions_seen(client, server)
        for _ in range(3):
            http_get(client, target)
        after = sessions_seen(client, server)
    finally:
        target.close()
    if before is None or after is None:
        raise CaseFailed("not observable: neither side is anytls_ref")
    if after - before != 1:
        raise CaseFailed(f"3 sequential connections used {after - before} TLS connections")
    return "3 requests, 1 TLS connection"


def scenario_udp(client: ClientSide, server: ServerSide, work: Path) -> str:
    echoes = [UdpEcho(), UdpEcho()]
    sock = None
    try:
        sock = Socks5Udp(("127.0.0.1", client.socks_port))
        for n in range(50):
            echo = echoes[n % 2]
            payload = f"datagram {n} ".encode() * (1 + n % 30)
            sock.sendto(payload, echo.address)
            try:
                data, source = sock.recvfrom()
            except OSError as exc:
                raise CaseFailed(f"datagram {n}: no reply ({exc})") from None
            if data != payload:
                raise CaseFailed(f"datagram {n}: reply differs")
            if tuple(source) != tuple(echo.address):
                raise CaseFailed(f"datagram {n}: reply from {source}, expected {echo.address}")
    finally:
        if sock is not None:
            sock.close()
        for echo in echoes:
            echo.close()
    return "50 datagrams, 2 targets, sources right"


#: Most connections padding-update holds open while waiting for the client's second session.
MAX_HELD = 3


def _session_md5s(client: ClientSide, server: ServerSide) -> list[str | None]:
    """The padding-md5 of each session so far, seen from our side (our server preferred)."""
    if server.ours is not None:
        return list(server.ours.stats.client_md5s)
    if client.ours is not None:
        return list(client.ours.stats.session_md5s)
    raise CaseFailed("not observable: neither side is anytls_ref")


def scenario_padding_update(client: ClientSide, server: ServerSide, work: Path) -> str:
    """Hold connections open until the client opens a second session, which must use the
    scheme the server sent to the first.

    A busy session is not idle (spec "Reuse"), so one held connection is enough for a client
    that carries one stream per session; a client that also hands out busy sessions (anytls-rs
    multiplexes) gets up to MAX_HELD, so the check below is reached either way."""
    echo = EchoServer()
    try:
        with contextlib.ExitStack() as held:
            for n in range(1, MAX_HELD + 1):
                sock = held.enter_context(contextlib.closing(socks_tcp(client, echo.address)))
                sock.sendall(b"hold")
                if sock.recv(4) != b"hold":
                    raise CaseFailed(f"connection {n} did not echo")
                if len(_session_md5s(client, server)) >= 2:
                    break
    finally:
        echo.close()
    md5s = _session_md5s(client, server)
    if len(md5s) < 2:
        raise CaseFailed(f"{MAX_HELD} connections held open, only {len(md5s)} session(s)")
    if md5s[0] != DEFAULT.md5 or md5s[1] != CUSTOM_MD5:
        raise CaseFailed(f"session md5s {md5s[:2]}, expected [default, {CUSTOM_MD5}]")
    return f"2nd session sent padding-md5 {CUSTOM_MD5[:8]}…"


def _expect_failure(action: Callable[[], object], what: str,
                    as_: type[BaseException] | None = None) -> str:
    """``action`` must fail within FAIL_WITHIN (with an ``as_`` exception, if given)."""
    start = time.monotonic()
    try:
        action()
    except (OSError, CaseFailed, socks.ProxyError) as exc:
        elapsed = time.monotonic() - start
        if elapsed > FAIL_WITHIN:
            raise CaseFailed(f"{what} failed only after {elapsed:.1f} s") from None
        if as_ is not None and not isinstance(exc, as_):
            raise CaseFailed(f"{what} failed, but not as {as_.__name__}: {exc}") from None
        return f"failed in {elapsed:.2f} s ({type(exc).__name__})"
    raise CaseFailed(f"{what} succeeded")


def scenario_wrong_password(client: ClientSide, server: ServerSide, work: Path) -> str:
    target = HTTPTarget()
    try:
        return _expect_failure(lambda: http_get(client, target, timeout=FAIL_WITHIN + 1),
                               "request with a wrong password")
    finally:
        target.close()


def scenario_refused(client: ClientSide, server: ServerSide, work: Path) -> str:
    # First a connection to an open port must work: a client that fails every connection would
    # otherwise "pass" without the closed port playing any part.
    echo = EchoServer()
    try:
        with contextlib.closing(socks_tcp(client, echo.address)) as control:
            control.sendall(b"ping")
            if control.recv(4) != b"ping":
                raise CaseFailed("control connection to an open port did not echo")
    except (OSError, socks.ProxyError) as exc:
        raise CaseFailed(f"control connection to an open port failed: {exc}") from None
    finally:
        echo.close()
    port = refused_port()

    def connect_and_use() -> None:
        with contextlib.closing(socks_tcp(client, ("127.0.0.1", port),
                                          timeout=FAIL_WITHIN + 1)) as sock:
            # a client that answers "success" first must still end the connection promptly
            sock.sendall(b"hello")
            if sock.recv(1) == b"":
                raise CaseFailed("closed after a success reply")

    # --wait-synack: the refusal must be a SOCKS5 error reply, not a connection that closes
    waits = client.ours is not None and client.ours.config.wait_synack
    return _expect_failure(connect_and_use, "connection to a closed port",
                           socks.ProxyError if waits else None)


# ---- our client's stricter scenarios: it answers before cmdSYNACK -------------------------


def _our_client(client: ClientSide) -> ObservedClient:
    if client.ours is None:
        raise CaseFailed("not observable: the client is not anytls_ref")
    return client.ours


def _until_idle(ours: ObservedClient, after: str) -> None:
    """Wait until the session is back in the idle pool, so that the next connection reuses it
    (our client puts it back on its relay thread, after the application's connection closed)."""
    try:
        eventually(lambda: ours.idle_sessions(), IDLE_WITHIN, f"a session idle {after}")
    except ExpectationFailed as exc:
        raise CaseFailed(str(exc)) from None


def _echo(sock: socket.socket, payload: bytes, what: str) -> None:
    """Send ``payload`` through an echo target in 16 KiB rounds; each must come back whole."""
    for offset in range(0, len(payload), 1 << 14):
        chunk = payload[offset:offset + (1 << 14)]
        sock.sendall(chunk)
        got = b""
        while len(got) < len(chunk):
            data = sock.recv(len(chunk) - len(got))
            if not data:
                raise CaseFailed(f"{what}: closed after {offset + len(got)} of {len(payload)} "
                                 "echoed bytes")
            got += data
        if got != chunk:
            raise CaseFailed(f"{what}: echo differs at byte {offset}")


def _check_answered(ours: ObservedClient, stream_id: int, what: str) -> Stream:
    """The stream just opened (its connection still open, its echo back) must have ``stream_id``
    and have had its cmdSYNACK: the Go servers send it before any of the target's data
    (anytls-go cmd/server/outbound_tcp.go:24-28, sing-box route/conn.go:120 (v1.13.2 source),
    mihomo listener/anytls/server.go:251), so an echo with the stream still waiting would be
    left to the 3 s watchdog, which closes the session."""
    stream = ours.opened[-1]
    if stream.stream_id != stream_id:
        raise CaseFailed(f"{what} went out as sid {stream.stream_id}, expected sid {stream_id} "
                         "on the one session")
    if stream.answer is None:
        raise CaseFailed(f"{what} (sid {stream_id}): the echo came back but no cmdSYNACK was "
                         "read before it")
    return stream


def scenario_early_reuse(client: ClientSide, server: ServerSide, work: Path) -> str:
    ours = _our_client(client)
    echo = EchoServer()
    session = None
    try:
        for n in range(1, EARLY_STREAMS + 1):
            if n > 1:
                _until_idle(ours, f"before connection {n}")
            with contextlib.closing(socks_tcp(client, echo.address)) as sock:
                _echo(sock, os.urandom(64 * 1024), f"connection {n}")
                stream = _check_answered(ours, n, f"connection {n}")
                if session is None:
                    session = stream.session
                elif stream.session is not session:
                    raise CaseFailed(f"connection {n} is on another session")
    finally:
        echo.close()
    if (ours.stats.sessions, ours.stats.reused) != (1, EARLY_STREAMS - 1):
        raise CaseFailed(f"{ours.stats.sessions} sessions, {ours.stats.reused} reused streams; "
                         f"expected 1 and {EARLY_STREAMS - 1}")
    return (f"{EARLY_STREAMS} echo streams (64 KiB each), sids 1-{EARLY_STREAMS} on 1 "
            "session, each cmdSYNACK read before its echo")


#: how early-refused reports a connection that closed, but later than EARLY_CLOSE_WITHIN
#: (interop/expected.py pins mihomo's failure to this text)
CLOSED_LATE = "closed only"


def scenario_early_refused(client: ClientSide, server: ServerSide, work: Path) -> str:
    ours = _our_client(client)
    echo = EchoServer()
    try:
        # sid 1 on a new session, so that the refused target is a reused session's stream
        with contextlib.closing(socks_tcp(client, echo.address)) as sock:
            _echo(sock, b"ping", "control connection")
            _check_answered(ours, 1, "control connection")
        _until_idle(ours, "after the control connection")
        port = refused_port()
        start = time.monotonic()
        try:
            sock = socks_tcp(client, ("127.0.0.1", port), timeout=FAIL_WITHIN + 1)
        except (OSError, socks.ProxyError) as exc:
            raise CaseFailed(f"SOCKS5 reply for the closed port was not success: {exc}") from None
        replied = time.monotonic() - start
        data = b""
        try:
            with contextlib.closing(sock):
                while chunk := sock.recv(1 << 16):
                    data += chunk
        except ConnectionResetError:
            pass  # closed all the same
        except OSError as exc:  # the timeout: still open
            raise CaseFailed(f"connection to the closed port still open after "
                             f"{time.monotonic() - start:.1f} s ({exc})") from None
        closed = time.monotonic() - start
        if data:
            raise CaseFailed(f"connection to the closed port gave {len(data)} bytes of data")
        refused_sid = ours.opened[-1].stream_id
        if refused_sid != 2:
            raise CaseFailed(f"the closed port's stream was sid {refused_sid}, not 2 on the "
                             "reused session")
        # the session carries the next stream
        _until_idle(ours, "after the refused connection")
        with contextlib.closing(socks_tcp(client, echo.address)) as sock:
            _echo(sock, os.urandom(64 * 1024), "connection after the refused one")
            _check_answered(ours, 3, "connection after the refused one")
    finally:
        echo.close()
    if (ours.stats.sessions, ours.stats.reused) != (1, 2):
        raise CaseFailed(f"{ours.stats.sessions} sessions, {ours.stats.reused} reused streams; "
                         "expected 1 and 2")
    if closed > EARLY_CLOSE_WITHIN:  # checked last: everything else held
        raise CaseFailed(f"SOCKS5 success, then {CLOSED_LATE} {closed:.2f} s later (limit "
                         f"{EARLY_CLOSE_WITHIN:.0f} s); no data, and sid 3 worked on the "
                         "same session")
    return (f"SOCKS5 success in {replied:.3f} s, closed with no data after {closed:.3f} s; "
            "sid 3 then worked on the same session")


SCENARIO_FUNCS = {
    "tcp": (scenario_tcp, Setup()),
    "http": (scenario_http, Setup()),
    "reuse": (scenario_reuse, Setup()),
    "udp": (scenario_udp, Setup()),
    "padding-update": (scenario_padding_update, Setup(server_scheme=CUSTOM_SCHEME)),
    "wrong-password": (scenario_wrong_password, Setup(client_password="not-the-password")),
    "refused": (scenario_refused, Setup()),
    "early-reuse": (scenario_early_reuse, Setup()),
    "early-refused": (scenario_early_refused, Setup()),
}


#: Where each peer's missing feature is documented (cargo/Go module source of the pinned version).
PEER_LIMITS = {
    ("anytls-rs", "client", "udp"): "anytls-rs 0.5.4 client has no UDP ASSOCIATE: its SOCKS5 "
    "listener ignores the command byte (src/client/socks5.rs:95)",
    ("anytls-rs", "server", "udp"): "anytls-rs 0.5.4 server relays UoT only with isConnect=1 and "
    "rejects isConnect=0, which SOCKS5 UDP clients use (src/server/udp_proxy.rs:160-166)",
}


def unsupported_reason(client: str, server: str, scenario: str) -> str | None:
    """Why a peer cannot take part in this scenario, from its documented capabilities."""
    for impl, role in ((client, "client"), (server, "server")):
        if not is_ours(impl) and (impl, role, scenario) in PEER_LIMITS:
            return PEER_LIMITS[impl, role, scenario]
    return None


def run_case(client: str, server: str, scenario: str) -> CaseResult:
    """Run one case from start to stop; never raises for a failed check."""
    func, setup = SCENARIO_FUNCS[scenario]
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"interop-{client}-{server}-{scenario}-"))
    result, detail = "fail", ""
    try:
        reason = unsupported_reason(client, server, scenario)
        if reason is not None:
            raise UnsupportedByPeer(reason)
        with running_server(server, setup, workdir) as srv:
            with running_client(client, setup, srv.port, workdir) as cli:
                detail = func(cli, srv, workdir)
                result = "pass"
    except UnsupportedByPeer as exc:
        result, detail = "unsupported-by-peer", str(exc)
    except CaseFailed as exc:
        detail = str(exc)
    except Exception as exc:  # a case reports, it does not crash the matrix
        detail = f"{type(exc).__name__}: {exc}"
    finally:
        if result == "pass" or os.environ.get("ANYTLS_INTEROP_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        elif result == "fail":
            detail += f" (logs kept in {workdir})"
    return CaseResult(client, server, scenario, result, detail, round(time.monotonic() - start, 2))


def cells(installed: set[str], *, baseline: bool = False) -> list[tuple[str, str]]:
    """(client, server) pairs to run: every pair with anytls_ref on one side, among installed
    implementations, then the --wait-synack client against each installed Go server; with
    ``baseline`` also each peer against itself."""
    impls = [i for i in IMPLEMENTATIONS if i == OURS or (not is_ours(i) and i in installed)]
    pairs = [(c, s) for c in impls for s in impls if OURS in (c, s)]
    pairs += [(WAIT_SYNACK, s) for s in GO_SERVERS if s in installed]
    if baseline:
        pairs += [(p, p) for p in impls if p != OURS]
    return pairs


def scenarios_for(client: str, server: str) -> list[str]:
    if client == WAIT_SYNACK:
        return WAIT_SYNACK_SCENARIOS
    if client == OURS and server in GO_SERVERS:
        return SCENARIOS + EARLY_SCENARIOS
    return SCENARIOS


def cases(installed: set[str], *, baseline: bool = False) -> list[tuple[str, str, str]]:
    """(client, server, scenario) for every cell of ``cells`` and each of its scenarios."""
    return [(c, s, sc) for c, s in cells(installed, baseline=baseline)
            for sc in scenarios_for(c, s)]
