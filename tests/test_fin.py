"""cmdFIN as decisions.md D40 settles it: a FIN says "done sending"; the client answers the
server's FIN at once, the server half-closes toward its target on the client's FIN, and the
client keeps receiving after its application's EOF (a half-close) until the server's FIN, or
until FIN_LINGER seconds pass with nothing arriving.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import socks

from anytls_ref import reuse
from anytls_ref.frame import Command
from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.probe.rawserver import RawServer
from anytls_ref.probe.scripting import eventually, frame
from anytls_ref.socksaddr import SocksAddr

PASSWORD = "fin test"
HALF_CLOSE_BYTES = 5 << 20


def socks_connect(inbound: ProxyInbound, target: tuple[str, int]) -> socks.socksocket:
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", inbound.address[1])
    sock.settimeout(20)
    sock.connect(target)
    return sock


def test_half_close_through_our_client_and_server_brings_the_whole_answer(
        make_server, make_proxy, echo_server):
    """The application sends 5 MiB, shuts down its sending side, then reads the whole answer
    to EOF: the client's FIN reaches the server, which passes the EOF to the target and goes on
    relaying what the target still sends."""
    inbound = make_proxy(make_server().address)
    payload = os.urandom(HALF_CLOSE_BYTES)
    with socks_connect(inbound, echo_server.address) as sock:
        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        answer = hashlib.sha256()
        received = 0
        while chunk := sock.recv(1 << 16):
            answer.update(chunk)
            received += len(chunk)
        sender.join()
    assert received == len(payload)
    assert answer.digest() == hashlib.sha256(payload).digest()


class TargetClosesAfterAnswering(RawServer):
    """Echoes each stream's first data, then ends the stream with FIN, as a server does whose
    target answered and closed; never answers a FIN of the client's (a Go server)."""

    def on_data(self, conn, stream_id, data):
        super().on_data(conn, stream_id, data)
        conn.send(frame(Command.FIN, stream_id))


def test_the_client_answers_the_server_s_fin_before_its_next_stream(make_client):
    with TargetClosesAfterAnswering(PASSWORD) as server:
        client = make_client(server.address)
        for sid in (1, 2, 3):
            stream = client.open_stream(SocksAddr("example.com", 80))
            stream.sendall(b"question")
            assert stream.recv(timeout=5) == b"question"
            assert stream.recv(timeout=5) == b""  # the server's FIN
            stream.close()  # nothing more goes out: the FIN was answered already
            eventually(lambda: len(server.find("FIN", sid)) == 1, 5, f"our FIN for sid {sid}")
        (number,) = server.connection_numbers()
        order = [(e.what, e.stream_id) for e in server.events_of(number)
                 if e.what in ("SYN", "FIN")]
        assert order == [("SYN", 1), ("FIN", 1), ("SYN", 2), ("FIN", 2), ("SYN", 3), ("FIN", 3)]
        assert (client.stats.sessions, client.stats.reused) == (1, 2)


class NeverAnswersFin(RawServer):
    """Echoes, and forgets a stream at the client's FIN without a word, as the Go servers do."""


def test_after_its_fin_the_client_lingers_and_then_stops_waiting_on_that_session(
        make_proxy, monkeypatch):
    monkeypatch.setattr(reuse, "FIN_LINGER", 0.3)
    with NeverAnswersFin(PASSWORD) as server:
        inbound = make_proxy(server.address)
        with socks_connect(inbound, ("198.51.100.1", 80)) as sock:
            sock.sendall(b"one")
            assert sock.recv(3) == b"one"
        # the application closed first: our FIN is out, the stream lingers for an answer ...
        eventually(lambda: server.find("FIN", 1), 5, "our FIN for sid 1")
        (session,) = inbound.client._sessions
        # ... which does not keep the session from the next connection
        eventually(lambda: inbound.client.idle_sessions() == [session], 5, "the session idle")
        with socks_connect(inbound, ("198.51.100.1", 80)) as sock:
            sock.sendall(b"two")
            assert sock.recv(3) == b"two"
        assert inbound.client.stats.sessions == 1
        # no FIN came within FIN_LINGER: this session's server does not answer one
        eventually(lambda: session.server_answers_fin is False, 5, "the linger to end")
        assert reuse.fin_linger(session.server_answers_fin) == 0.0


def test_our_server_answers_the_client_s_fin_once_its_target_has_ended(make_server,
                                                                       make_proxy, echo_server):
    inbound = make_proxy(make_server().address)
    with socks_connect(inbound, echo_server.address) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    (session,) = inbound.client._sessions
    eventually(lambda: session.server_answers_fin is True, 5, "the server's FIN after ours")
