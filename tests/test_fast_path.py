"""The relay and frame I/O fast path (spec_notes/performance.md): data arrives intact however
cmdPSH frames and TLS records line up, whether the stream is relayed (the session reader writes
into the socket) or still buffered, and a FIN right after data loses nothing.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading

import pytest

from anytls_ref.effects import StreamData
from anytls_ref.errors import LocalProtocolError
from anytls_ref.frame import (HEADER_SIZE, MAX_DATA, NEED_DATA, Command, Frame, FrameDecoder,
                              encode_psh, frame_psh_in_place)
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.session import Session
from anytls_ref.net.stream import Stream
from anytls_ref.padding import DEFAULT, DEFAULT_SCHEME
from anytls_ref.probe.rawclient import connect_v2
from anytls_ref.probe.scripting import frame
from anytls_ref.rules import ClientRules, ServerRules, Situation
from anytls_ref.socksaddr import SocksAddr, encode_socksaddr

PASSWORD = "fast path"


@pytest.fixture
def server():
    srv = Server(ServerConfig(listen=("127.0.0.1", 0), password=PASSWORD))
    srv.start()
    yield srv
    srv.close()


# ---- frame.py helpers ----------------------------------------------------------------------


def test_frame_psh_in_place_is_encode_psh_without_a_copy():
    data = random.Random(1).randbytes(1000)
    buf = bytearray(HEADER_SIZE) + data
    assert bytes(frame_psh_in_place(buf, 7, len(data))) == encode_psh(7, data)


def test_frame_psh_in_place_refuses_more_than_one_frame_holds():
    with pytest.raises(LocalProtocolError):
        frame_psh_in_place(bytearray(HEADER_SIZE + MAX_DATA + 1), 1, MAX_DATA + 1)


def test_partial_frame_hands_over_what_arrived():
    wire = encode_psh(3, b"a" * 10) + encode_psh(5, bytes(range(200)))
    decoder = FrameDecoder()
    decoder.feed(wire[: len(wire) - 150])
    assert decoder.next_frame().data == b"a" * 10
    assert decoder.next_frame() is NEED_DATA
    assert decoder.partial_frame() == (Command.PSH, 5, 200, 50)
    into = bytearray(200)
    assert decoder.take_partial(into) == 50
    assert into[:50] == bytes(range(50))
    assert decoder.buffered == 0 and decoder.partial_frame() is None
    decoder.feed(encode_psh(6, b"next"))  # the decoder goes on with the next frame
    assert decoder.next_frame().data == b"next"


def test_partial_frame_needs_a_whole_header():
    decoder = FrameDecoder()
    decoder.feed(encode_psh(1, b"xyz")[:HEADER_SIZE - 1])
    assert decoder.partial_frame() is None


# ---- the session reader: large frames in every layout ---------------------------------------


def _payload(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _layouts() -> dict[str, list[bytes]]:
    """TLS writes (one record per 16 KiB) carrying frames of sid 1 in various alignments."""
    a, b = _payload(1, MAX_DATA), _payload(2, 40_000)
    big = encode_psh(1, a)
    return {
        "frame starts a record": [big],
        "frame starts inside a record": [encode_psh(1, b"x" * 100) + big],
        "header alone in a record": [big[:HEADER_SIZE], big[HEADER_SIZE:]],
        "header and a few bytes, then the rest": [big[: HEADER_SIZE + 10], big[HEADER_SIZE + 10:]],
        "split at an odd byte": [big[:30_001], big[30_001:]],
        "two frames in one write": [big + encode_psh(1, b)],
        "header split across writes": [big[:3], big[3:]],
    }


@pytest.mark.parametrize("layout", list(_layouts()))
def test_large_frames_arrive_intact_in_any_record_layout(server, echo_server, layout):
    writes = _layouts()[layout]
    sent = b"".join(f.data for f in _decode(b"".join(writes)))
    with connect_v2(server.address, PASSWORD) as peer:
        peer.open_stream(1, *echo_server.address)
        peer.expect(Command.SYNACK, sid=1)
        for write in writes:
            peer.send_raw(write)
        echoed = peer.recv_data(1, len(sent), timeout=10.0)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(sent).digest()


def _decode(wire: bytes):
    decoder = FrameDecoder()
    decoder.feed(wire)
    return decoder.frames()


def test_data_buffered_before_the_relay_starts_is_a_copy(server, echo_server):
    """The address and a large first chunk in one frame, a second large frame right behind it:
    the server reads the address from the stream's buffer (no socket attached yet) while the
    reader reuses its frame buffer for the next frame, so the buffered data must be a copy."""
    first, second = _payload(3, 60_000), _payload(4, MAX_DATA)
    addr = encode_socksaddr(SocksAddr(*echo_server.address))
    wire = (frame(Command.SYN, 1) + encode_psh(1, addr + first) + encode_psh(1, second))
    with connect_v2(server.address, PASSWORD) as peer:
        peer.send_raw(wire)
        peer.expect(Command.SYNACK, sid=1)
        echoed = peer.recv_data(1, len(first) + len(second), timeout=10.0)
    assert echoed == first + second


class CountingSink:
    """A TCP target that counts what it receives until EOF."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[:2]
        self.received = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="counting-sink")
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while data := conn.recv(1 << 16):
                self.received += len(data)
        self.done.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def test_fin_right_after_data_loses_nothing(server):
    """Data and cmdFIN in one write: the reader writes the data into the target socket before
    the FIN shuts that socket down."""
    sink = CountingSink()
    try:
        data = _payload(5, 300_000)
        with connect_v2(server.address, PASSWORD) as peer:
            peer.open_stream(1, *sink.address)
            peer.expect(Command.SYNACK, sid=1)
            peer.send_raw(encode_psh(1, data) + frame(Command.FIN, 1))
            assert sink.done.wait(10)
        assert sink.received == len(data)
    finally:
        sink.close()


# ---- the one place the net layer acts before the rules (net/session.py Session._fast_psh) ----


@pytest.mark.parametrize("role", ["server", "client"])
def test_the_psh_fast_path_does_what_the_rules_table_says(role):
    """For every frame the reader might take the fast path with, the rules (rules.TABLE) would
    have given the same: StreamData for the same stream and bytes (nothing for an empty PSH);
    every other frame goes to the rules."""
    def fresh_rules():
        if role == "server":
            rules = ServerRules(DEFAULT.md5, DEFAULT_SCHEME)
            rules.receive(Frame(Command.SETTINGS, 0, f"v=2\npadding-md5={DEFAULT.md5}".encode()))
            rules.receive(Frame(Command.SYN, 1))
        else:
            rules = ClientRules("test", DEFAULT.md5)
            rules.open_stream(1)
        return rules

    frames = [Frame(Command.PSH, 1, b"data"), Frame(Command.PSH, 1, b""),
              Frame(Command.PSH, 7, b"stray"), Frame(Command.FIN, 1),
              Frame(Command.WASTE, 1, b"pad"), Frame(Command.SYN, 1)]
    ours, peer = socket.socketpair()
    with ours, peer:
        session = Session(ours, fresh_rules(), label="t")
        stream = Stream(session, 1)
        session.streams[1] = stream
        for received in frames:
            rules = fresh_rules()
            before = stream._buffered
            taken = session._fast_psh(received)
            fed = stream._buffered - before
            if received.command == Command.PSH and received.stream_id in session.streams:
                assert taken and rules.situation(received) is Situation.OPEN_STREAM
                want = [StreamData(1, received.data)] if received.data else []
                assert rules.receive(received) == want and fed == len(received.data), received
            else:
                assert not taken and fed == 0, received
        stream.close()
