"""Faults (issue 9): targets that refuse or never read, a server that crashes or goes silent, a
client that crashes, a peer that floods a stream nobody reads; and the active keepalive
(``--heartbeat``) that finds dead idle sessions.

Where a test reads a server's threads, file descriptors or memory, the server runs in a child
process (interop/faults.py ServerProcess) and the figures come from /proc/PID. Every wait is a
deadline on a polled condition.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
import socks

from anytls_ref.__main__ import main as cli_main
from anytls_ref.frame import Command, encode_psh
from anytls_ref.net.client import Client
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.errors import StreamOpenError
from anytls_ref.net.stream import STREAM_BUFFER_LIMIT
from anytls_ref.socksaddr import SocksAddr
from interop.faults import BlackholeProxy, HangingTarget, ServerProcess, SilentTarget
from anytls_ref.probe.rawclient import connect_v2
from anytls_ref.probe.rawserver import RawServer
from anytls_ref.probe.scripting import eventually
from anytls_ref.probe.targets import refused_port

PASSWORD = "reliability campaign"
#: what a non-blocking TLS write raises when the peer stopped reading
WOULD_BLOCK = (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError)


# ---- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def server():
    with Server(ServerConfig(listen=("127.0.0.1", 0), password=PASSWORD)) as srv:
        yield srv


@pytest.fixture
def make_server_process(request, tmp_path):
    """Our server in a child process (interop/faults.py); each is killed at the end."""
    made = 0

    def make(**kwargs) -> ServerProcess:
        nonlocal made
        kwargs.setdefault("log_path", tmp_path / f"server-{made}.log")
        proc = ServerProcess(PASSWORD, **kwargs)
        request.addfinalizer(proc.kill)
        made += 1
        return proc

    return make


@pytest.fixture
def silent_target():
    with SilentTarget() as target:
        yield target


def recv_exact(stream, n: int, timeout: float = 5.0) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.recv(n - len(data), timeout=timeout)
        if not chunk:
            break
        data += chunk
    return data


def roundtrip(client: Client, target: tuple[str, int], payload: bytes = b"ping") -> None:
    stream = client.open_stream(SocksAddr(*target))
    try:
        stream.sendall(payload)
        assert recv_exact(stream, len(payload)) == payload
    finally:
        stream.close()


def wait_idle(client: Client, count: int = 1) -> None:
    eventually(lambda: len(client.idle_sessions()) == count, 3.0, f"{count} idle session(s)")


class Pusher:
    """Writes ``total`` bytes into a stream (or socket) on a thread, counting what went out."""

    def __init__(self, send, total: int, chunk: int = 1 << 16) -> None:
        self.sent = 0
        self.error: BaseException | None = None
        self._send, self._total, self._chunk = send, total, chunk
        self.thread = threading.Thread(target=self._run, name="test-pusher")
        self.thread.start()

    def _run(self) -> None:
        block = b"x" * self._chunk
        try:
            while self.sent < self._total:
                self._send(block)
                self.sent += len(block)
        except Exception as exc:  # noqa: BLE001 - expected when the test tears the stream down
            self.error = exc


# ---- targets -------------------------------------------------------------------------------


def test_refused_target_fails_within_1s_and_the_session_stays_usable(server, make_client,
                                                                       echo_server):
    client = make_client(server.address, wait_synack=True)  # the refusal reaches the caller
    start = time.monotonic()
    with pytest.raises(StreamOpenError, match="refused"):
        client.open_stream(SocksAddr("127.0.0.1", refused_port()))
    took = time.monotonic() - start
    print(f"refused target: stream failed after {took * 1000:.1f} ms")
    assert took < 1.0
    wait_idle(client)
    roundtrip(client, echo_server.address)
    assert (client.stats.sessions, client.stats.reused) == (1, 1)


def test_target_that_never_reads_stalls_no_other_session(server, make_client, echo_server,
                                                         silent_target):
    stuck_client = make_client(server.address)
    stuck = stuck_client.open_stream(SocksAddr(*silent_target.address))
    # far more than every buffer on the way (kernel socket buffers, TLS) can hold
    pusher = Pusher(stuck.sendall, 64 << 20)
    eventually(lambda: pusher.sent >= 2 << 20, 20.0, "2 MiB pushed into the silent target")
    other = make_client(server.address)
    slowest = 0.0
    for n in range(20):
        start = time.monotonic()
        roundtrip(other, echo_server.address, f"round {n}".encode() * 100)
        slowest = max(slowest, time.monotonic() - start)
    print(f"another session while one stream is stuck: 20 round trips, slowest "
          f"{slowest * 1000:.1f} ms")
    assert slowest < 1.0
    assert pusher.thread.is_alive() and pusher.sent < 64 << 20, "the stuck stream is stuck"
    print(f"stuck stream: {pusher.sent / 2**20:.1f} MiB pushed before it stalled")
    stuck_client.close()  # wakes the pusher with an error
    pusher.thread.join(5.0)
    assert not pusher.thread.is_alive()


# ---- a server that dies or goes silent -----------------------------------------------------


def test_server_killed_mid_stream(make_server_process, make_client, echo_server):
    first = make_server_process()
    client = make_client(first.address)
    stream = client.open_stream(SocksAddr(*echo_server.address))
    stream.sendall(b"before the crash")
    assert recv_exact(stream, 16) == b"before the crash"
    (session,) = client._sessions
    outcome: list[object] = []

    def reader() -> None:
        try:
            outcome.append(stream.recv(timeout=10.0))
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcome.append(exc)
        outcome.append(time.monotonic())

    thread = threading.Thread(target=reader, name="test-blocked-reader")
    thread.start()
    killed_at = time.monotonic()
    first.kill()
    thread.join(5.0)
    failed_after = outcome[1] - killed_at
    assert not isinstance(outcome[0], bytes) or outcome[0] == b""  # an error or EOF
    assert failed_after < 1.0, f"the stream failed {failed_after:.2f} s after the kill"
    print(f"server killed: the blocked stream failed {failed_after * 1000:.1f} ms later "
          f"with {outcome[0]!r}")
    eventually(lambda: session.closed.is_set() and session not in client._sessions, 1.0,
               "the dead session left the client")
    assert client.idle_sessions() == []
    stream.close()
    # the server comes back on the same port: the next request opens a new session
    make_server_process(port=first.address[1])
    roundtrip(client, echo_server.address, b"after the restart")
    assert client.stats.sessions == 2


def test_silent_server_is_caught_by_the_synack_watchdog(server, make_client, echo_server):
    """Without --heartbeat: the reused, dead session costs one request (the 3 s cmdSYNACK
    watchdog, as Go clients do); the request after it opens a new session."""
    with BlackholeProxy(server.address) as proxy:
        client = make_client(proxy.address, wait_synack=True)  # the watchdog fails the caller
        roundtrip(client, echo_server.address)
        wait_idle(client)
        assert proxy.blackhole() == 1
        start = time.monotonic()
        with pytest.raises(StreamOpenError, match="SYNACK"):
            client.open_stream(SocksAddr(*echo_server.address))
        took = time.monotonic() - start
        print(f"silent server, no heartbeat: the reusing request failed after {took:.2f} s")
        assert 2.9 < took < 5.0
        roundtrip(client, echo_server.address)
        assert client.stats.sessions == 2


# ---- active keepalive: --heartbeat ---------------------------------------------------------


def test_heartbeat_drops_a_dead_idle_session_and_the_next_request_succeeds(server, make_client,
                                                                            echo_server):
    with BlackholeProxy(server.address) as proxy:
        client = make_client(proxy.address, heartbeat=0.3, heartbeat_timeout=0.3)
        roundtrip(client, echo_server.address)
        wait_idle(client)
        (session,) = client.idle_sessions()
        silenced = time.monotonic()
        proxy.blackhole()
        eventually(lambda: session.closed.is_set(), 3.0, "the dead session dropped")
        detected = time.monotonic() - silenced
        print(f"heartbeat 0.3 s, timeout 0.3 s: dead idle session dropped {detected:.2f} s "
              f"after the blackhole")
        assert detected < 2.0  # two intervals plus the timeout (0.9 s), and scheduling
        assert client.stats.heartbeat_failures == 1 and client.idle_sessions() == []
        start = time.monotonic()
        roundtrip(client, echo_server.address)
        assert time.monotonic() - start < 1.0
        assert (client.stats.sessions, client.stats.reused) == (2, 0)


def test_heartbeat_before_reuse_opens_a_fresh_session_instead(server, make_client, echo_server):
    with BlackholeProxy(server.address) as proxy:
        # a long interval: no periodic round runs during the test, only the check before reuse
        client = make_client(proxy.address, heartbeat=30.0, heartbeat_timeout=0.5)
        roundtrip(client, echo_server.address)
        wait_idle(client)
        (session,) = client.idle_sessions()
        proxy.blackhole()
        session.alive_at -= 31.0  # as if it had been idle for longer than the interval
        start = time.monotonic()
        roundtrip(client, echo_server.address)  # succeeds, on a new session
        took = time.monotonic() - start
        print(f"heartbeat before reuse (timeout 0.5 s): the request succeeded on a new session "
              f"after {took:.2f} s")
        assert 0.5 <= took < 2.5, took
        assert session.closed.is_set()
        assert client.stats.heartbeat_failures == 1
        assert (client.stats.sessions, client.stats.reused) == (2, 0)


def test_heartbeat_keeps_a_live_idle_session(server, make_client, echo_server):
    client = make_client(server.address, heartbeat=0.1, heartbeat_timeout=1.0)
    roundtrip(client, echo_server.address)
    wait_idle(client)
    (session,) = client.idle_sessions()
    eventually(lambda: session.heartbeats_answered >= 3, 3.0, "three heartbeats answered")
    session.alive_at -= 1.0  # a reuse check too
    roundtrip(client, echo_server.address)
    assert (client.stats.sessions, client.stats.reused, client.stats.heartbeat_failures) == (1, 1, 0)


@pytest.mark.parametrize("version, expected", [(1, 0), (2, 1)])
def test_heartbeat_only_to_version_2_servers(make_client, version, expected):
    with RawServer(PASSWORD, version=version) as raw:
        client = make_client(raw.address, heartbeat=30.0)
        stream = client.open_stream(SocksAddr("127.0.0.1", 9))
        stream.close()
        wait_idle(client)
        (session,) = client.idle_sessions()
        if version >= 2:  # the stream was handed out before the server's answer (D34)
            eventually(lambda: session.server_version == version, 2.0, "cmdServerSettings")
        session.alive_at -= 31.0
        client.check_idle_sessions()  # one round, now
        assert client.stats.heartbeats == expected
        if expected:
            eventually(lambda: raw.find("HEART_REQUEST"), 2.0, "HeartRequest seen")
            assert [e.stream_id for e in raw.find("HEART_REQUEST")] == [0]
            assert session.heartbeats_answered == 1 and not session.closed.is_set()
        assert client.stats.heartbeat_failures == 0


def test_heartbeat_flag(capsys):
    assert cli_main(["client", "-l", "127.0.0.1:1", "-s", "127.0.0.1:2", "-p", "x",
                     "--heartbeat", "0"]) == 2
    assert "--heartbeat must be a positive" in capsys.readouterr().err


# ---- a client that dies --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def socks_to(proxy_port: int, target: tuple[str, int]) -> socks.socksocket:
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", proxy_port)
    sock.settimeout(5.0)
    sock.connect(target)
    return sock


def push_until_back_pressure(send, block: bytes, would_block: tuple, *, limit: int = 64 << 20,
                             quiet: float = 1.0, timeout: float = 30.0) -> int:
    """Non-blocking ``send(block)`` until nothing has gone out for ``quiet`` seconds (every
    buffer on the way is full: the far end stopped reading); returns the bytes sent."""
    pushed = 0
    stalled_since = None
    deadline = time.monotonic() + timeout
    while pushed < limit and time.monotonic() < deadline:
        try:
            pushed += send(block)
            stalled_since = None
        except would_block:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > quiet:
                break
            time.sleep(0.005)
    return pushed


def test_client_killed_mid_stream_server_frees_everything(make_server_process, echo_server,
                                                          silent_target, tmp_path):
    srv = make_server_process()
    baseline = srv.counts()
    port = free_port()
    with open(tmp_path / "client.log", "wb") as log:
        client = subprocess.Popen(
            [sys.executable, "-m", "anytls_ref", "client", "-l", f"127.0.0.1:{port}",
             "-s", f"127.0.0.1:{srv.address[1]}", "-p", PASSWORD, "--insecure"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    socks_socks = []
    try:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        eventually(listening, 20.0, "client listening")
        echo = socks_to(port, echo_server.address)
        socks_socks.append(echo)
        echo.sendall(b"x" * 100_000)
        got = 0
        while got < 100_000:
            got += len(echo.recv(1 << 16))
        stuck = socks_to(port, silent_target.address)
        socks_socks.append(stuck)
        stuck.setblocking(False)
        pushed = push_until_back_pressure(stuck.send, b"y" * (1 << 16), (BlockingIOError,))
        during = srv.counts()
        assert during[0] > baseline[0] and during[1] > baseline[1]
    finally:
        client.kill()
        client.wait()
        killed_at = time.monotonic()
        for sock in socks_socks:
            sock.close()
    try:
        after = srv.settle(baseline, slack=0, timeout=float(os.environ.get("SETTLE", "10")))
    except AssertionError:
        os.kill(srv.pid, signal.SIGUSR1)
        time.sleep(0.5)
        print(srv.log_text()[-6000:])
        raise
    freed_after = time.monotonic() - killed_at
    assert srv.stop() == 0
    print(f"client killed with {pushed / 2**20:.1f} MiB stuck towards a target that never "
          f"reads: server (fds, threads) baseline {baseline}, during {during}, after {after}, "
          f"{freed_after:.2f} s after the kill")


# ---- memory: a flood to a stream nobody reads ----------------------------------------------


@pytest.mark.parametrize("target_kind, streams", [("never-reads", 1), ("dial-hangs", 1),
                                                   ("dial-hangs", 4)])
def test_flood_to_a_stream_nobody_reads_stays_within_the_bound(make_server_process,
                                                               silent_target, target_kind,
                                                               streams):
    """Peers push up to 64 MiB of cmdPSH each at a stream whose target never reads (the reader
    writes straight into the target socket and blocks there) or whose dial hangs (the data
    waits in the stream buffer, STREAM_BUFFER_LIMIT), one stream per session. The server's peak
    resident memory grows by at most the documented bound per stream: the buffer, one frame
    and the session reader's buffers."""
    with HangingTarget() as hanging:
        target = silent_target.address if target_kind == "never-reads" else hanging.address
        srv = make_server_process(dial_timeout=30.0)
        # warm up: one whole session through the same code paths, so allocator arenas and
        # lazily created objects are in the baseline
        with connect_v2(srv.address, PASSWORD) as warm:
            warm.open_stream(1, "127.0.0.1", refused_port())
            warm.expect(Command.SYNACK, sid=1)
        rss_before = srv.rss_kib()
        peers = []
        pushed = []
        try:
            for _ in range(streams):
                peer = connect_v2(srv.address, PASSWORD)
                peers.append(peer)
                peer.open_stream(1, *target)
                if target_kind == "never-reads":
                    peer.expect(Command.SYNACK, sid=1)
                peer.tls.setblocking(False)
                # one TLS write at a time: a 64 KiB cmdPSH (a retry passes the same bytes)
                pushed.append(push_until_back_pressure(
                    peer.tls.send, encode_psh(1, b"z" * 65535), WOULD_BLOCK))
            peak = srv.peak_rss_kib()
            growth = (peak - rss_before) * 1024
        finally:
            for peer in peers:
                peer.close()
        bound = streams * (STREAM_BUFFER_LIMIT + 65535 + 2 * (1 << 18))
        print(f"{target_kind} x{streams}: pushed {sum(pushed) / 2**20:.1f} MiB before "
              f"back-pressure; server RSS {rss_before} KiB before, peak {peak} KiB, growth "
              f"{growth / 2**20:.2f} MiB (bound {bound / 2**20:.2f} MiB)")
        assert all(n < 64 << 20 for n in pushed), "the server never pushed back"
        assert growth <= bound
