"""The fallback relay keeps TCP's half-close (net/relay.py relay_sockets).

A visitor whose authentication fails is relayed to the fallback service. A visitor that sends
its request and then shuts down its sending side (an HTTP/1.0 client doing shutdown(SHUT_WR))
must still get the service's whole answer, exactly as from the service itself; only when both
directions have ended, or either side fails, does the relay end. Each backend here is a small
scripted service; ``relay_ended`` is set when the server's relay returns, so no test waits on a
guess.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from anytls_ref.net import server as server_mod
from anytls_ref.net.listener import ThreadedListener
from anytls_ref.net.server import Server
from anytls_ref.probe.rawclient import RawClient, insecure_client_context
from interop.targets import HTTP_BODY

PASSWORD = "half-close tests"
HTTP_1_0_REQUEST = b"GET / HTTP/1.0\r\n\r\n"
#: Upper bound for anything that should happen at once.
WAIT = 5.0


class Backend(ThreadedListener):
    """A fallback service that runs ``script(conn)`` for each connection; close() joins all."""

    thread_name = "backend"

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        super().__init__(("127.0.0.1", 0))
        self.script = script
        self.start()

    def handle(self, conn: socket.socket, peer: tuple, seq: int) -> None:
        self.script(conn)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def answer_at_eof(conn: socket.socket) -> None:
    """Answers only once the request has ended: a visitor that half-closes gets this."""
    request = read_all(conn)
    conn.sendall(b"you sent %d bytes\n" % len(request) + request[::-1])


class Holder:
    """A service that reads the request until EOF, then keeps the connection open and silent
    until ``release()``: closed then, or reset with ``release(reset=True)``."""

    def __init__(self) -> None:
        self.received = b""
        self.got_data = threading.Event()
        self.ended = threading.Event()  # its read ended: EOF, or the connection failed
        self._release = threading.Event()
        self._reset = False

    def script(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(1 << 16):
                self.received += data
                self.got_data.set()
        except OSError:
            pass
        self.ended.set()
        self._release.wait()
        if self._reset:  # closed with SO_LINGER 0 (by ThreadedListener): a RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def release(self, *, reset: bool = False) -> None:
        self._reset = reset
        self._release.set()


@pytest.fixture
def holder() -> Iterator[tuple[Holder, Backend]]:
    h = Holder()
    backend = Backend(h.script)
    yield h, backend
    h.release()
    backend.close()


@pytest.fixture
def relay_ended(monkeypatch) -> threading.Event:
    """Set when the server's fallback relay (relay_sockets) has returned."""
    ended = threading.Event()
    real = server_mod.relay_sockets

    def recording(*args, **kwargs) -> None:
        try:
            real(*args, **kwargs)
        finally:
            ended.set()

    monkeypatch.setattr(server_mod, "relay_sockets", recording)
    return ended


def direct_visit(address: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(address, timeout=WAIT) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


# ---- the visitor half-closes: it still gets the whole answer ---------------------------------


@pytest.mark.parametrize("size", [100, 300_000], ids=["one record", "300 kB"])
def test_a_visitor_that_half_closes_gets_the_whole_answer(make_server, relay_ended, size):
    backend = Backend(answer_at_eof)
    try:
        server = make_server(fallback=backend.address)
        request = (b"not anytls " + bytes(range(256)) * (size // 256 + 1))[:size]
        with RawClient(server.address) as peer:
            peer.send_raw(request)
            peer.half_close()  # done sending, as an HTTP/1.0 client
            via_fallback = peer.recv_raw_until_closed(timeout=WAIT)
        assert relay_ended.wait(WAIT)  # both directions ended: the relay is over
        direct = direct_visit(backend.address, request)
    finally:
        backend.close()
    assert direct.startswith(b"you sent %d bytes\n" % len(request))
    assert via_fallback == direct


def test_an_http_1_0_client_that_half_closes_gets_the_page(make_server, http_server):
    server = make_server(fallback=http_server.address)
    with RawClient(server.address) as peer:
        peer.send_raw(b"GET /half HTTP/1.0\r\nHost: example.test\r\n\r\n")
        peer.half_close()
        response = peer.recv_raw_until_closed(timeout=WAIT)
    assert response.startswith(b"HTTP/1.0 200 OK\r\n")
    assert response.endswith(HTTP_BODY + b"path=/half\n")


def test_the_services_eof_leaves_the_visitor_able_to_send(make_server, relay_ended):
    # the other direction: the service says its piece and half-closes, then listens
    heard: list[bytes] = []

    def greet_then_listen(conn: socket.socket) -> None:
        conn.sendall(b"hello, say something\n")
        conn.shutdown(socket.SHUT_WR)
        heard.append(read_all(conn))

    backend = Backend(greet_then_listen)
    try:
        server = make_server(fallback=backend.address)
        # the visitor's TLS must survive the server's FIN-without-close_notify too
        context = insecure_client_context()
        context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
        with RawClient(server.address, context=context) as peer:
            peer.send_raw(b"not anytls, but a first line long enough\n")
            assert peer.recv_raw_until_closed(timeout=WAIT) == b"hello, say something\n"
            assert not relay_ended.is_set()  # its EOF ended one direction only
            peer.send_raw(b"something\n")
            peer.half_close()
            assert relay_ended.wait(WAIT)
    finally:
        backend.close()  # joins greet_then_listen
    assert heard == [b"not anytls, but a first line long enough\nsomething\n"]


# ---- the relay still ends: either side failing, closing, or the server closing ----------------


def test_a_visitor_reset_ends_the_relay_at_once(make_server, holder, relay_ended):
    h, backend = holder
    server = make_server(fallback=backend.address)
    with RawClient(server.address) as peer:
        peer.send_raw(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        assert h.got_data.wait(WAIT)
        peer.reset()
    assert h.ended.wait(WAIT)  # the service's connection was shut down as well
    assert relay_ended.wait(WAIT)


@contextlib.contextmanager
def half_closed_visitor(make_server, holder) -> Iterator[tuple[Server, RawClient]]:
    """A visitor relayed to the holding service: it sent an HTTP/1.0 request and half-closed,
    and the service has read that to EOF (it stays silent until released)."""
    h, backend = holder
    server = make_server(fallback=backend.address)
    with RawClient(server.address) as peer:
        peer.send_raw(HTTP_1_0_REQUEST)
        peer.half_close()
        assert h.ended.wait(WAIT)  # the EOF reached the service
        yield server, peer


def test_a_visitor_reset_after_its_half_close_ends_the_relay(make_server, holder, relay_ended):
    with half_closed_visitor(make_server, holder) as (_, peer):
        assert holder[0].received == HTTP_1_0_REQUEST
        assert not relay_ended.is_set()  # the relay waits for the service's answer
        peer.reset()  # the visitor gives up while the service stays silent
    assert relay_ended.wait(WAIT)


@pytest.mark.parametrize("reset", [False, True], ids=["closes", "resets"])
def test_the_service_ending_after_the_half_close_ends_the_relay(make_server, holder,
                                                                 relay_ended, reset):
    with half_closed_visitor(make_server, holder) as (_, peer):
        holder[0].release(reset=reset)  # no answer at all: the visitor sees the end, nothing else
        assert peer.recv_raw_until_closed(timeout=WAIT) == b""
    assert relay_ended.wait(WAIT)


def test_closing_the_server_ends_a_half_closed_relay(make_server, holder, relay_ended):
    with half_closed_visitor(make_server, holder) as (server, peer):
        # the service never answers: Server.close must end the relay all the same
        closer = threading.Thread(target=server.close, name="closer")
        closer.start()
        closer.join(WAIT)
        assert not closer.is_alive(), "Server.close hangs on a half-closed fallback relay"
        assert relay_ended.is_set()
        assert peer.recv_raw_until_closed(timeout=WAIT) == b""
