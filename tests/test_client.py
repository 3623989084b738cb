"""The threaded client (issue 4, acceptance 1-4 and 6) through our own server.

An application talks SOCKS5 (PySocks) or HTTP proxy (http.client) to ProxyInbound, which opens
streams through Client, which carries them over anytls sessions to our Server (or, where a
misbehaving server is needed, to anytls_ref/probe/rawserver.RawServer), which dials local targets
(interop/targets.py). What the client put on the wire is observed on the server side: its frame
trace (logger "anytls_ref.trace", read through caplog), its stats, or the raw server's events.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
import socks

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.version import SYNACK_WATCHDOG
from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.tls import write_self_signed
from anytls_ref.padding import DEFAULT, parse_scheme
from anytls_ref.params import ClientParams
from anytls_ref.socksaddr import SocksAddr
from anytls_ref.probe.rawserver import RawServer
from anytls_ref.probe.scripting import eventually
from anytls_ref.probe.targets import refused_port
from interop.targets import HTTP_BODY, HTTPTarget, ipv6_loopback_available

PASSWORD = "correct horse battery staple"
#: our servers here log their frames (make_server in conftest.py), which the reuse tests read
SERVER_DEFAULTS = {"trace": True}
#: a scheme unlike the default in every line a test can see (padding0 77, not 30)
CUSTOM_SCHEME = b"stop=4\n0=77-77\n1=200-300\n2=100-200,c,300-400\n3=9-9"


# ---- fixtures and helpers (make_proxy, make_server: conftest.py) ---------------------------


@pytest.fixture
def server(make_server) -> Server:
    return make_server()


@pytest.fixture
def trace(caplog):
    """The server's frame trace, captured."""
    caplog.set_level(logging.INFO, logger="anytls_ref.trace")
    return caplog


def socks_connect(proxy: ProxyInbound, host: str, port: int, *,
                  timeout: float = 5.0) -> socks.socksocket:
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, *proxy.address, rdns=True)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def socks_failure(proxy: ProxyInbound, host: str, port: int, *, timeout: float = 5.0) -> str:
    """Connect through the proxy expecting a SOCKS5 failure reply; returns PySocks' text for
    it, e.g. "0x05: Connection refused" (PySocks wraps the reply error in GeneralProxyError)."""
    try:
        socks_connect(proxy, host, port, timeout=timeout).close()
    except socks.ProxyError as exc:
        inner = exc.socket_err if isinstance(exc.socket_err, socks.SOCKS5Error) else exc
        if isinstance(inner, socks.SOCKS5Error):
            return inner.msg
        raise
    raise AssertionError(f"SOCKS CONNECT to {host}:{port} succeeded")


def recv_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def get_via_socks(proxy: ProxyInbound, target: tuple[str, int], path: str = "/") -> bytes:
    with socks_connect(proxy, *target) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: target\r\n\r\n".encode())
        return recv_until_closed(sock)


def echo_through(sock: socket.socket, payload: bytes, timeout: float = 30.0) -> bytes:
    """Send ``payload`` on one thread while reading it back on this one."""
    errors: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(payload)
        except BaseException as exc:  # reported by the test, not the thread
            errors.append(exc)

    sender = threading.Thread(target=send, name="test-sender")
    sender.start()
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while len(received) < len(payload) and time.monotonic() < deadline:
            data = sock.recv(1 << 16)
            if not data:
                break
            received += data
    finally:
        sender.join()
    assert not errors
    return bytes(received)


_SERVER_LINE = re.compile(r"^(conn \d+)\s+←\s+\S+\s+(.*)$")


def server_frames(caplog) -> dict[str, list[str]]:
    """The server's trace: frame summaries received, per TLS connection ("conn N")."""
    frames: dict[str, list[str]] = defaultdict(list)
    for record in caplog.records:
        if record.name == "anytls_ref.trace" and (m := _SERVER_LINE.match(record.getMessage())):
            frames[m.group(1)].append(m.group(2))
    return dict(frames)


def syn_ids(caplog) -> dict[str, list[int]]:
    """Stream ids of the cmdSYNs the server received, per TLS connection."""
    return {conn: [int(m.group(1)) for f in frames if (m := re.match(r"SYN sid=(\d+)", f, re.I))]
            for conn, frames in server_frames(caplog).items()}


# ---- 1. SOCKS5, HTTP proxy, volume, IPv6 ---------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_socks5_connect_fetches_a_page(server, make_proxy, http_server, host):
    proxy = make_proxy(server.address)
    response = get_via_socks(proxy, (host, http_server.address[1]), "/socks")
    assert response.startswith(b"HTTP/1.0 200 OK\r\n")
    assert response.endswith(HTTP_BODY + b"path=/socks\n")
    assert server.stats.streams == 1


def test_http_proxy_connect(server, make_proxy, http_server):
    proxy = make_proxy(server.address)
    conn = http.client.HTTPConnection(*proxy.address, timeout=5)
    conn.set_tunnel(*http_server.address)  # CONNECT host:port, then the request inside
    try:
        conn.request("GET", "/tunnel")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == HTTP_BODY + b"path=/tunnel\n"
    finally:
        conn.close()
    assert server.stats.streams == 1


def test_http_proxy_absolute_uri_get(server, make_proxy, http_server):
    proxy = make_proxy(server.address)
    conn = http.client.HTTPConnection(*proxy.address, timeout=5)
    try:
        conn.request("GET", f"{http_server.url}/absolute?x=1",
                     headers={"Proxy-Connection": "keep-alive"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == HTTP_BODY + b"path=/absolute?x=1\n"
    finally:
        conn.close()
    # the target saw an origin-form request without the proxy's hop-by-hop headers
    ((method, path, headers),) = http_server.requests
    assert (method, path) == ("GET", "/absolute?x=1")
    assert "Proxy-Connection" not in headers


def test_10_mib_echo_through_socks(server, make_proxy, echo_server):
    proxy = make_proxy(server.address)
    payload = random.Random(10).randbytes(10 << 20)
    with socks_connect(proxy, *echo_server.address, timeout=30) as sock:
        echoed = echo_through(sock, payload)
    assert len(echoed) == len(payload)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_ipv6_loopback_target(server, make_proxy):
    target = HTTPTarget("::1")
    try:
        proxy = make_proxy(server.address)
        response = get_via_socks(proxy, ("::1", target.address[1]), "/v6")  # SOCKS ATYP 4
        assert response.endswith(HTTP_BODY + b"path=/v6\n")
        conn = http.client.HTTPConnection(*proxy.address, timeout=5)
        try:
            conn.request("GET", f"{target.url}/v6-http")  # http://[::1]:port/v6-http
            assert conn.getresponse().read() == HTTP_BODY + b"path=/v6-http\n"
        finally:
            conn.close()
    finally:
        target.close()
    assert server.stats.streams == 2


def test_other_first_byte_is_closed(server, make_proxy, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref.inbound")
    proxy = make_proxy(server.address)
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00")  # SOCKS4
        try:
            assert recv_until_closed(sock) == b""
        except ConnectionResetError:
            pass  # closed with our request unread: a reset is a close too
    assert any("neither SOCKS5 nor HTTP" in r.getMessage() for r in caplog.records)
    assert server.stats.connections == 0


# ---- 2. reuse and idle cleanup -------------------------------------------------------------


@pytest.mark.spec("REUSE-IMPLEMENT")
@pytest.mark.spec("REUSE-RETURN-IDLE")
def test_three_sequential_socks_connections_share_one_tls_connection(server, make_proxy,
                                                                     http_server, trace):
    proxy = make_proxy(server.address)
    for n in range(3):
        assert get_via_socks(proxy, http_server.address, f"/{n}").endswith(f"/{n}\n".encode())
        # the stream is over once its session is back in the pool
        eventually(lambda: len(proxy.client.idle_sessions()) == 1, 2.0, "session idle again")
    assert syn_ids(trace) == {"conn 1": [1, 2, 3]}
    assert server.stats.connections == 1


def test_disable_reuse_uses_a_tls_connection_per_request(server, make_proxy, http_server,
                                                         trace):
    proxy = make_proxy(server.address, disable_reuse=True)
    for n in range(3):
        assert get_via_socks(proxy, http_server.address, f"/{n}").endswith(f"/{n}\n".encode())
    assert syn_ids(trace) == {"conn 1": [1], "conn 2": [1], "conn 3": [1]}
    assert proxy.client.idle_sessions() == []


@pytest.mark.spec("REUSE-CLEANUP")
@pytest.mark.spec("PARAM-MIN-IDLE")
@pytest.mark.spec("REUSE-NEWEST-IDLE")
def test_idle_sessions_are_closed_after_the_timeout_keeping_min_idle(server, make_client,
                                                                     echo_server):
    check, timeout = 0.1, 0.4
    client = make_client(server.address,
                         params=ClientParams(PASSWORD, check, timeout, min_idle_session=1))
    # three streams open at once need three sessions; closing them leaves three idle
    streams = [client.open_stream(SocksAddr(*echo_server.address)) for _ in range(3)]
    for stream in streams:
        stream.close()
    eventually(lambda: len(client.idle_sessions()) == 3, 2.0, "three idle sessions")
    idle_at = time.monotonic()
    newest, *older = client.idle_sessions()  # newest first
    assert newest.seq == max(s.seq for s in [newest, *older])
    eventually(lambda: all(s.closed.is_set() for s in older), 3.0, "older sessions closed")
    assert time.monotonic() - idle_at >= timeout - 0.05, "closed before the idle timeout"
    assert client.idle_sessions() == [newest]
    # the kept one survives further checks well past the timeout, and is reused
    assert not newest.closed.wait(timeout + 3 * check)
    stream = client.open_stream(SocksAddr(*echo_server.address))
    try:
        assert stream.session is newest
        stream.sendall(b"still here")
        assert stream.recv(timeout=2.0) == b"still here"
    finally:
        stream.close()
    assert server.stats.connections == 3


# ---- 3. padding scheme update --------------------------------------------------------------


@pytest.mark.spec("PAD-UPDATE-NEW-SESSIONS")
@pytest.mark.spec("PAD-STORE-PER-CLIENT")
@pytest.mark.spec("SESS-SETTINGS-FIRST")
def test_second_session_uses_the_scheme_the_server_sent(make_server, make_client, echo_server,
                                                        trace):
    server = make_server(padding_scheme=CUSTOM_SCHEME)
    custom = parse_scheme(CUSTOM_SCHEME)
    # wait_synack: open_stream returns once the server answered, its scheme update before that
    client = make_client(server.address, wait_synack=True)
    first = client.open_stream(SocksAddr(*echo_server.address))
    try:
        # the first session sent the default md5 and was told the server's scheme; while its
        # stream is open, the next stream needs a second session
        assert client.scheme.md5 == custom.md5
        second = client.open_stream(SocksAddr(*echo_server.address))
        second.close()
    finally:
        first.close()
    frames = server_frames(trace)
    assert set(frames) == {"conn 1", "conn 2"}
    assert frames["conn 1"][0] == "Auth padding0=30"  # the default scheme's line 0: 30-30
    # the trace shows an md5 by its first 8 hex digits
    assert f"padding-md5={DEFAULT.md5[:8]}…" in frames["conn 1"][1]
    assert frames["conn 2"][0] == "Auth padding0=77"  # the new scheme's line 0: 77-77
    assert f"padding-md5={custom.md5[:8]}…" in frames["conn 2"][1]
    assert frames["conn 2"][1].startswith("Settings v=3 ")


@pytest.mark.spec("REUSE-RETURN-IDLE")
def test_a_session_is_idle_again_as_soon_as_the_server_ends_its_stream(server, make_client,
                                                                       http_server):
    client = make_client(server.address)
    stream = client.open_stream(SocksAddr(*http_server.address))
    stream.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while stream.recv(timeout=5):  # HTTP/1.0: the target closes, the server sends cmdFIN
        pass
    # nothing here closes the stream: the cmdFIN alone puts the session back, so that an
    # application's next connection, which may come at once, finds it (the relay thread that
    # would close the stream may still be finishing)
    eventually(lambda: client.idle_sessions(), 2.0, "the session back in the pool")
    again = client.open_stream(SocksAddr(*http_server.address))
    again.close()
    stream.close()
    assert (client.stats.sessions, client.stats.reused) == (1, 1)


# ---- TLS session resumption (decisions.md D38) ---------------------------------------------


def test_each_new_session_resumes_with_the_unused_ticket_of_the_newest_one(server, make_client,
                                                                           echo_server):
    client = make_client(server.address, wait_synack=True)
    streams = []
    try:
        for _ in range(3):  # each stays open, so each needs a session of its own
            # open means the server's SYNACK came, and its session tickets came before it
            streams.append(client.open_stream(SocksAddr(*echo_server.address)))
        streams[-1].sendall(b"ping")
        assert streams[-1].recv(4, timeout=5) == b"ping"
        sessions = sorted(client._sessions, key=lambda s: s.seq)
        # session 2 offered session 1's ticket, session 3 session 2's; none is offered twice
        assert [s.ticket_taken for s in sessions] == [True, True, False]
    finally:
        for stream in streams:
            stream.close()
    assert (client.stats.sessions, client.stats.tls_resumed) == (3, 2)


def test_a_ticket_the_server_does_not_know_costs_a_full_handshake_not_an_error(
        make_server, make_client, echo_server):
    first, other = make_server(), make_server()  # other server, other ticket keys
    client = make_client(first.address, wait_synack=True)  # the ticket came with the answer
    held = client.open_stream(SocksAddr(*echo_server.address))
    offered = []
    take = client._ticket_to_resume
    client._ticket_to_resume = lambda: offered.append(take()) or offered[-1]
    try:
        client.config.server = other.address  # as if the name now led to another server
        stream = client.open_stream(SocksAddr(*echo_server.address))
        try:
            stream.sendall(b"ping")
            assert stream.recv(4, timeout=5) == b"ping"
        finally:
            stream.close()
        assert len(offered) == 1 and offered[0] is not None  # the first server's ticket
    finally:
        held.close()
    assert (client.stats.sessions, client.stats.tls_resumed) == (2, 0)
    assert other.stats.sessions == 1


# ---- 4. SYNACK error, SYNACK watchdog ------------------------------------------------------


@pytest.mark.spec("SESS-SYNACK-ERROR-CLOSE")
def test_synack_error_is_a_socks_failure_reply_within_1s(server, make_proxy, echo_server):
    proxy = make_proxy(server.address, wait_synack=True)
    start = time.monotonic()
    assert socks_failure(proxy, "127.0.0.1", refused_port()) == "0x05: Connection refused"
    assert time.monotonic() - start < 1.0
    # HTTP proxy clients get 502 for the same failure
    conn = http.client.HTTPConnection(*proxy.address, timeout=5)
    try:
        conn.request("GET", f"http://127.0.0.1:{refused_port()}/")
        response = conn.getresponse()
        assert response.status == 502
        assert b"refused" in response.read().lower()
    finally:
        conn.close()


@pytest.mark.spec("V2-SYNACK-TIMEOUT")
def test_no_synack_on_sid_2_closes_the_session_after_3s(make_proxy):
    with RawServer(PASSWORD, synack=lambda sid: sid == 1) as raw:
        proxy = make_proxy(raw.address, wait_synack=True)
        with socks_connect(proxy, "127.0.0.1", 9) as sock:  # the raw server echoes
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
        eventually(lambda: len(proxy.client.idle_sessions()) == 1, 2.0, "session idle")

        start = time.monotonic()
        assert socks_failure(proxy, "127.0.0.1", 9, timeout=10) == "0x06: TTL expired"
        assert abs(time.monotonic() - start - SYNACK_WATCHDOG) < 0.5
        eventually(lambda: any(e.conn == 1 for e in raw.find("closed")), 1.0, "session closed")
        (syn2,) = raw.find("SYN", 2)
        (closed,) = raw.find("closed")
        assert syn2.conn == 1 and abs(closed.time - syn2.time - 3.0) <= 0.5

        with socks_connect(proxy, "127.0.0.1", 9) as sock:
            sock.sendall(b"pong")
            assert sock.recv(4) == b"pong"
        assert [e.conn for e in raw.find("auth")] == [1, 2]
        assert [(e.conn, e.stream_id) for e in raw.find("SYN")] == [(1, 1), (1, 2), (2, 1)]


# ---- --fast-open (decisions.md D39) --------------------------------------------------------


def test_fast_open_answers_before_the_synack_and_data_flows(make_proxy):
    # this raw server never sends cmdSYNACK for sid 2: only --fast-open can answer at once
    with RawServer(PASSWORD, synack=lambda sid: sid == 1) as raw:
        proxy = make_proxy(raw.address)
        with socks_connect(proxy, "127.0.0.1", 9) as first:  # the raw server echoes
            first.sendall(b"ping")
            assert first.recv(4) == b"ping"
        eventually(lambda: len(proxy.client.idle_sessions()) == 1, 2.0, "session idle")
        start = time.monotonic()
        with socks_connect(proxy, "127.0.0.1", 9) as second:
            assert time.monotonic() - start < 1.0  # answered with no SYNACK at all
            second.sendall(b"pong")
            assert second.recv(4) == b"pong"
            # [V2-SYNACK-TIMEOUT] still no SYNACK for sid 2: the watchdog closes the session
            # SYNACK_WATCHDOG after its cmdSYN, which ends this connection
            assert recv_until_closed(second) == b""
        (syn2,) = raw.find("SYN", 2)
        eventually(lambda: any(e.conn == 1 for e in raw.find("closed")), 1.0, "session closed")
        (closed,) = raw.find("closed")
        assert abs(closed.time - syn2.time - SYNACK_WATCHDOG) <= 0.5


@pytest.mark.spec("SESS-SYNACK-ERROR-CLOSE")
def test_fast_open_closes_the_connection_on_a_synack_error(server, make_proxy, echo_server):
    proxy = make_proxy(server.address)
    start = time.monotonic()
    # the reply comes before the server has tried the target, so it is a success...
    with socks_connect(proxy, "127.0.0.1", refused_port()) as sock:
        # ...and the server's refusal (cmdSYNACK with the error) closes the connection
        assert recv_until_closed(sock) == b""
    assert time.monotonic() - start < 1.0
    # the session is fine and is reused for the next stream
    with socks_connect(proxy, *echo_server.address) as sock:
        assert echo_through(sock, b"x" * 100_000) == b"x" * 100_000
    assert (proxy.client.stats.sessions, proxy.client.stats.reused) == (1, 1)


class SingleStreamServer(RawServer):
    """As the ssrlive 0.3.x server: a stream id other than 1 gets Alert "unsupported sid N",
    then the session is closed."""

    def on_syn(self, conn, stream_id: int) -> None:
        if stream_id != 1:
            self.alert(conn, f"unsupported sid {stream_id}")
            self.drop(conn.number)
            return
        super().on_syn(conn, stream_id)


def test_unsupported_sid_alert_retries_on_a_new_session_then_stops_reusing(make_proxy, caplog):
    # decisions.md D32, with --wait-synack: the stream is retried before the application sends
    caplog.set_level(logging.WARNING, logger="anytls_ref.client")
    with SingleStreamServer(PASSWORD) as raw:
        proxy = make_proxy(raw.address, wait_synack=True)
        for n, payload in enumerate([b"one", b"two", b"three"]):
            with socks_connect(proxy, "127.0.0.1", 9) as sock:  # the raw server echoes
                sock.sendall(payload)
                assert sock.recv(len(payload)) == payload, "no application data is lost"
            if n == 0:
                eventually(lambda: len(proxy.client.idle_sessions()) == 1, 2.0, "session idle")
        # the 2nd connection tried sid 2 on the idle session, was refused and went to a new
        # session; reuse is off from then on, so the 3rd connection has a session of its own
        assert [(e.conn, e.stream_id) for e in raw.find("SYN")] == [(1, 1), (1, 2), (2, 1),
                                                                     (3, 1)]
        assert proxy.client.idle_sessions() == []
    assert [r.getMessage() for r in caplog.records if "reuse disabled" in r.getMessage()] == [
        "server rejects reused sessions (unsupported sid 2); reuse disabled"]


def test_unsupported_sid_alert_by_default_costs_one_connection_then_reuse_stops(make_proxy,
                                                                               caplog):
    # decisions.md D32/D34: answered at once, the application's data went out on sid 2; the
    # Alert ends that connection (as with the Go clients), and reuse is off from then on
    caplog.set_level(logging.WARNING, logger="anytls_ref.client")
    with SingleStreamServer(PASSWORD) as raw:
        proxy = make_proxy(raw.address)
        answers = []
        for n, payload in enumerate([b"one", b"two", b"three"]):
            with socks_connect(proxy, "127.0.0.1", 9) as sock:
                sock.sendall(payload)
                try:
                    answers.append(sock.recv(len(payload)))
                except ConnectionResetError:
                    answers.append(b"")
            if n == 0:
                eventually(lambda: len(proxy.client.idle_sessions()) == 1, 2.0, "session idle")
        assert answers == [b"one", b"", b"three"]
        assert [(e.conn, e.stream_id) for e in raw.find("SYN")] == [(1, 1), (1, 2), (2, 1)]
    assert [r.getMessage() for r in caplog.records if "reuse disabled" in r.getMessage()] == [
        "server rejects reused sessions (unsupported sid 2); reuse disabled"]


# ---- 6. certificates and the command line --------------------------------------------------


def test_certificate_verification_failure_is_reported_without_hanging(server, make_proxy,
                                                                      http_server, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref")
    proxy = make_proxy(server.address, insecure=False)  # a self-signed server certificate
    start = time.monotonic()
    assert socks_failure(proxy, *http_server.address).startswith("0x0")
    assert time.monotonic() - start < 2.0
    assert any("certificate verify failed" in r.getMessage() for r in caplog.records)
    conn = http.client.HTTPConnection(*proxy.address, timeout=5)
    try:
        conn.request("GET", f"{http_server.url}/")
        response = conn.getresponse()
        assert response.status == 502
        assert b"certificate verify failed" in response.read()
    finally:
        conn.close()
    assert server.stats.sessions == 0


def test_ca_file_verifies_the_server(make_server, make_proxy, http_server, tmp_path):
    cert, key = write_self_signed(str(tmp_path))
    server = make_server(cert_file=cert, key_file=key)
    proxy = make_proxy(server.address, insecure=False, ca_file=cert)
    assert get_via_socks(proxy, http_server.address, "/ca").endswith(b"path=/ca\n")


def _bad_command_lines(tmp: str) -> list[tuple[list[str], str]]:
    """(argv, a word the one error line must contain)."""
    junk = f"{tmp}/junk.pem"
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    client = ["client", "-l", "127.0.0.1:0"]
    good_server = ["-s", "127.0.0.1:1", "-p", "pw"]
    server = ["server", "-l", "127.0.0.1:0", "-p", "pw"]
    return [
        (client + good_server + ["--bogus"], "--bogus"),
        (client, "-s/--server"),
        (client + good_server + ["-m", "many"], "--min-idle"),
        (client + good_server + ["--idle-timeout", "0"], "positive"),
        (["client", "-l", "localhost"] + good_server, "HOST:PORT"),
        (client + ["-s", "127.0.0.1", "-p", "pw"], "HOST:PORT"),
        # (a link without a port is valid since issue 17: port 443, as docs/uri_scheme.md says)
        (client + ["-s", "anytls://pw@:443"], "anytls://PASSWORD@HOST:PORT"),
        (client + ["-s", "anytls://pw@127.0.0.1:notaport"], "anytls://PASSWORD@HOST:PORT"),
        (client + ["-s", "anytls://pw@127.0.0.1:99999"], "anytls://PASSWORD@HOST:PORT"),
        (client + ["-s", "anytls://127.0.0.1:443"], "password"),
        (client + ["-s", "http://pw@127.0.0.1:443", "-p", "pw"], "anytls://PASSWORD@HOST:PORT"),
        (client + good_server + ["--ca", f"{tmp}/missing.pem"], "no such file"),
        (client + good_server + ["--ca", junk], "CA file"),
        (["server", "-l", "127.0.0.1:0"], "-p/--password"),
        (server + ["--cert", junk], "--key"),
        (server + ["--cert", junk, "--key", junk], "certificate"),
        (server + ["--padding-scheme", f"{tmp}/missing"], "padding scheme"),
        (server + ["--fallback", "nowhere"], "fallback"),
        (server + ["--min-version", "0"], "--min-version"),
        (["launch"], "invalid choice"),
    ]


@pytest.mark.spec("PARAM-PASSWORD")
def test_bad_command_lines_exit_2_with_one_clear_line(tmp_path):
    # all at once: each is a fresh interpreter, and they are independent
    cases = _bad_command_lines(str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-m", "anytls_ref", *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv, _ in cases]
    problems = []
    for (argv, word), proc in zip(cases, procs):
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            problems.append(f"{argv}: did not exit")
            continue
        lines = err.strip().splitlines()
        if (proc.returncode != 2 or out or len(lines) != 1
                or not lines[0].startswith("anytls-ref: error: ") or word not in lines[0]):
            problems.append(f"{argv}: exit {proc.returncode}, stderr {err!r}")
    assert problems == []


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_server_and_proxy_listen_on_ipv6_loopback(http_server):
    """`server -l [::1]:PORT` and `client -l [::1]:PORT` both work (listeners pick the family)."""
    with Server(ServerConfig(("::1", 0), PASSWORD)) as server:
        client = Client(ClientConfig(("::1", server.address[1]), PASSWORD, insecure=True))
        with ProxyInbound(("::1", 0), client) as proxy:
            assert proxy.address[0] == "::1"
            # through the HTTP proxy side (PySocks cannot reach a SOCKS proxy over IPv6)
            conn = http.client.HTTPConnection("::1", proxy.address[1], timeout=5)
            try:
                conn.request("GET", f"{http_server.url}/over-v6")
                assert conn.getresponse().read() == HTTP_BODY + b"path=/over-v6\n"
            finally:
                conn.close()
