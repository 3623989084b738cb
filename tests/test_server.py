"""The threaded server (issue 3, acceptance 1-7), driven by a scripted raw client over TLS.

Every test starts our Server on 127.0.0.1:0 and talks to it with anytls_ref/probe/rawclient.RawClient,
frame by frame, with local targets (conftest.py's echo_server and http_server). Each
expectation has a deadline; the autouse fixture in conftest.py fails a test that leaves a thread
behind or lets a background thread raise.
"""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from anytls_ref.auth import encode_auth, password_hash
from anytls_ref.frame import Command
from anytls_ref.net.server import Server
from anytls_ref.padding import DEFAULT_SCHEME, scheme_md5
from anytls_ref.rules import ALERT_NO_SETTINGS
from anytls_ref.settings import ServerSettings
from anytls_ref.socksaddr import SocksAddr, encode_socksaddr
from anytls_ref.probe.rawclient import RawClient, connect_v2
from anytls_ref.probe.scripting import frame
from anytls_ref.probe.targets import refused_port
from interop.targets import HTTP_BODY

PASSWORD = "correct horse battery staple"
CUSTOM_SCHEME = b"stop=3\n0=50-50\n1=200-300\n2=100-200"




@pytest.fixture
def server(make_server) -> Server:
    return make_server()


def echo_roundtrip(peer: RawClient, sid: int, payload: bytes) -> None:
    peer.send_data(sid, payload)
    assert peer.recv_data(sid, len(payload)) == payload


def echo_on_new_stream(peer: RawClient, sid: int, echo: tuple[str, int], payload: bytes) -> None:
    """Open ``sid`` to the echo target (its cmdSYNACK must come), then one echo round trip."""
    peer.open_confirmed(sid, *echo)
    echo_roundtrip(peer, sid, payload)


# ---- 1. versions ---------------------------------------------------------------------------


@pytest.mark.spec("SESS-SERVER-SETTINGS")
@pytest.mark.spec("SESS-SYNACK-AFTER-DIAL")
@pytest.mark.spec("COMPAT-OLD-PEER-TESTS")
@pytest.mark.parametrize("client_version, answered", [(2, 2), (3, 3), (9, 3)])
def test_v2_client_gets_server_settings_synack_and_echo(server, echo_server, client_version,
                                                        answered):
    with RawClient(server.address) as peer:
        peer.send_auth(PASSWORD)
        peer.send_settings(version=client_version)
        # the padding md5 matches, so no cmdUpdatePaddingScheme: ServerSettings comes first,
        # with v = min(client's v, PROTOCOL_VERSION)
        reply = peer.expect(Command.SERVER_SETTINGS)
        assert ServerSettings.decode(reply.data).version == answered
        synack = peer.open_confirmed(1, *echo_server.address)
        assert synack.data == b"", "an empty SYNACK means the dial succeeded"
        echo_roundtrip(peer, 1, b"hello through anytls")


@pytest.mark.spec("V2-BOTH-SIDES")
def test_v1_client_gets_no_server_settings_and_no_synack(server, echo_server):
    with RawClient(server.address) as peer:
        peer.send_auth(PASSWORD)
        peer.send_settings(version=1)
        peer.open_stream(1, *echo_server.address)
        peer.send_data(1, b"v1 data")
        # the very first frame from the server is the echo: no ServerSettings, no SYNACK
        assert peer.recv_data(1, 7) == b"v1 data"


@pytest.mark.spec("SESS-REJECT-ALERT")
@pytest.mark.spec("COMPAT-MIN-REJECT")
def test_min_version_2_rejects_a_v1_client_with_alert(make_server):
    server = make_server(min_version=2)
    with RawClient(server.address) as peer:
        peer.send_auth(PASSWORD)
        peer.send_settings(version=1)
        alert = peer.expect(Command.ALERT)
        assert alert.data, "an Alert explains why"
        assert peer.closed_within(2.0)


# ---- 2. session rules ----------------------------------------------------------------------


@pytest.mark.spec("SESS-SYN-BEFORE-SETTINGS")
@pytest.mark.spec("SESS-REJECT-ALERT")
def test_syn_before_settings_gets_alert_then_close(server, echo_server):
    with RawClient(server.address) as peer:
        peer.send_auth(PASSWORD)
        peer.open_stream(1, *echo_server.address)
        alert = peer.expect(Command.ALERT)
        assert alert.data.decode() == ALERT_NO_SETTINGS
        assert peer.closed_within(2.0)
    assert echo_server.connections == 0, "a rejected stream is never dialled"


@pytest.mark.spec("SESS-MAY-REJECT")
@pytest.mark.spec("SESS-REJECT-ALERT")
def test_stream_data_without_syn_gets_alert_then_close(server, echo_server):
    # decisions.md D31: ssrlive 0.3.2 clients open a stream with its first cmdPSH, no cmdSYN;
    # dropping that data would leave them waiting for ever
    with connect_v2(server.address, PASSWORD) as peer:
        peer.send_frame(Command.PSH, 1, encode_socksaddr(SocksAddr(*echo_server.address)))
        alert = peer.expect(Command.ALERT)
        assert b"never opened with cmdSYN" in alert.data
        assert peer.closed_within(2.0)
    assert echo_server.connections == 0, "a stream that was never opened is never dialled"


@pytest.mark.spec("PAD-UPDATE-SEND")
@pytest.mark.parametrize("server_scheme", [DEFAULT_SCHEME, CUSTOM_SCHEME],
                         ids=["default", "custom"])
def test_wrong_md5_gets_update_padding_scheme_before_server_settings(make_server,
                                                                     server_scheme):
    server = make_server(padding_scheme=server_scheme)
    with RawClient(server.address) as peer:
        peer.send_auth(PASSWORD)
        peer.send_settings(version=2, padding_md5=scheme_md5(b"some other scheme"))
        update = peer.expect(Command.UPDATE_PADDING_SCHEME)
        assert update.data == server_scheme, "the server's own scheme, byte for byte"
        peer.expect(Command.SERVER_SETTINGS)


@pytest.mark.spec("PAD-UPDATE-SEND")
def test_matching_custom_md5_gets_no_update(make_server):
    server = make_server(padding_scheme=CUSTOM_SCHEME)
    with RawClient(server.address) as peer:
        peer.send_auth(PASSWORD)
        peer.send_settings(version=2, padding_md5=scheme_md5(CUSTOM_SCHEME))
        peer.expect(Command.SERVER_SETTINGS)


@pytest.mark.spec("SESS-HEART-RESPOND")
@pytest.mark.parametrize("sid", [0, 7])
def test_heart_request_is_answered_on_the_same_sid(server, sid):
    with connect_v2(server.address, PASSWORD) as peer:
        peer.send_frame(Command.HEART_REQUEST, sid)
        peer.expect(Command.HEART_RESPONSE, sid=sid)


@pytest.mark.spec("SESS-WASTE-DISCARD")
@pytest.mark.spec("FRAME-NO-DATA")
def test_waste_unknown_commands_and_stray_data_are_skipped(server, echo_server):
    with connect_v2(server.address, PASSWORD) as peer:
        peer.send_raw(
            frame(Command.WASTE, 0, bytes(500))
            + frame(42, 3, b"a command from the future")
            # data where the spec allows none: skipped, so the stream stays in sync
            + frame(Command.HEART_REQUEST, 5, b"stray")
        )
        peer.expect(Command.HEART_RESPONSE, sid=5)
        echo_on_new_stream(peer, 1, echo_server.address, b"still in sync")


# ---- 3. refused target ---------------------------------------------------------------------


@pytest.mark.spec("SESS-SYNACK-AFTER-DIAL")
def test_refused_target_gets_synack_error_within_1s(server, echo_server):
    with connect_v2(server.address, PASSWORD) as peer:
        start = time.monotonic()
        synack = peer.open_confirmed(1, "127.0.0.1", refused_port(), timeout=1.0)
        assert time.monotonic() - start < 1.0
        assert synack.data, "a failed dial carries its error text"
        assert b"refused" in synack.data.lower()
        peer.expect(Command.FIN, sid=1)
        # the session survives a failed stream
        echo_on_new_stream(peer, 2, echo_server.address, b"next stream works")


# ---- 4. streams on one session -------------------------------------------------------------


def test_fin_then_new_sid_on_the_same_session(server, echo_server):
    with connect_v2(server.address, PASSWORD) as peer:
        echo_on_new_stream(peer, 1, echo_server.address, b"first")
        peer.fin(1)
        # a half-close (decisions.md D40): the echo target hears EOF and closes, and only then
        # does the server's FIN come; the session stays open
        peer.expect(Command.FIN, sid=1)
        peer.send_frame(Command.HEART_REQUEST, 0)
        peer.expect(Command.HEART_RESPONSE, sid=0)
        echo_on_new_stream(peer, 2, echo_server.address, b"second")


def test_overlapping_streams(server, echo_server):
    """sing-anytls can send SYN 2 before FIN 1 (peers.md §2)."""
    with connect_v2(server.address, PASSWORD) as peer:
        peer.open_confirmed(1, *echo_server.address)
        echo_on_new_stream(peer, 2, echo_server.address, b"on two")
        echo_roundtrip(peer, 1, b"on one, still open")
        peer.fin(1)
        peer.expect(Command.FIN, sid=1)  # once its echo target has ended (D40)
        echo_roundtrip(peer, 2, b"two outlives one")


def test_sid_reused_after_its_fin(server, echo_server):
    """ssrlive clients send SYN 1 again on a reused session (peers.md §2)."""
    with connect_v2(server.address, PASSWORD) as peer:
        for round_ in range(3):
            if round_ == 0:
                peer.open_stream(1, *echo_server.address)
            else:
                # FIN and the new SYN in one write: the old stream's teardown races the new one,
                # so the server's FIN for the old one may come first, or not at all (D40)
                peer.send_raw(frame(Command.FIN, 1))
                peer.open_stream(1, *echo_server.address)
            answer = peer.read_frame()
            if round_ and answer is not None and answer.command == Command.FIN:
                answer = peer.read_frame()
            assert answer is not None and (answer.command, answer.stream_id) == (
                Command.SYNACK, 1), answer
            echo_roundtrip(peer, 1, f"round {round_}".encode())


def test_target_eof_sends_fin_and_the_session_stays_open(server, http_server, echo_server):
    with connect_v2(server.address, PASSWORD) as peer:
        peer.open_confirmed(1, *http_server.address)
        peer.send_data(1, b"GET /eof HTTP/1.0\r\n\r\n")
        response = b""
        while (f := peer.read_frame()) is not None and f.command == Command.PSH:
            response += f.data
        assert f is not None and f.command == Command.FIN and f.stream_id == 1
        assert response.startswith(b"HTTP/1.0 200") and response.endswith(b"path=/eof\n")
        echo_on_new_stream(peer, 2, echo_server.address, b"after EOF")


# ---- 5. wrong password, fallback -----------------------------------------------------------


@pytest.mark.spec("AUTH-SERVER-VERIFY")
def test_hash_in_a_tls_record_of_its_own_is_accepted(server, echo_server):
    # decisions.md D5: jxo-me anytls-rs writes sha256(password), the padding0 length and
    # padding0 as three TLS records; the whole hash is in the first, so it is judged there
    with RawClient(server.address) as peer:
        request = encode_auth(password_hash(PASSWORD), 10)
        peer.send_raw(request[:32])
        time.sleep(0.05)  # let the server's first read end with the hash
        peer.send_raw(request[32:34])
        peer.send_raw(request[34:])
        peer.send_settings(version=2)
        peer.expect(Command.SERVER_SETTINGS)
        echo_on_new_stream(peer, 1, echo_server.address, b"split authentication")
    assert server.stats.auth_failures == 0


@pytest.mark.spec("AUTH-SERVER-REJECT")
def test_wrong_password_closes_without_any_frame(server):
    with RawClient(server.address) as peer:
        peer.send_auth("wrong password")
        peer.send_settings()
        assert peer.closed_within(2.0)
        assert peer.received == []
    assert server.stats.auth_failures == 1
    assert server.stats.sessions == 0


@pytest.mark.spec("AUTH-SERVER-REJECT")
def test_fallback_serves_an_http_request_sent_in_place_of_the_auth(make_server, http_server):
    server = make_server(fallback=http_server.address)
    with RawClient(server.address) as peer:
        peer.send_raw(b"GET /probe HTTP/1.0\r\nHost: example.test\r\n\r\n")
        response = peer.recv_raw_until_closed(timeout=3.0)
    assert response.startswith(b"HTTP/1.0 200 OK\r\n")
    assert response.endswith(HTTP_BODY + b"path=/probe\n")
    assert [r[1] for r in http_server.requests] == ["/probe"]
    assert server.stats.auth_failures == 1


# ---- 6. volume -----------------------------------------------------------------------------


def test_5_mib_through_one_stream(server, echo_server):
    payload = random.Random(5).randbytes(5 << 20)
    chunk = 256 << 10  # in flight at a time: fits the socket buffers, so no second thread
    echoed = bytearray()
    with connect_v2(server.address, PASSWORD) as peer:
        peer.open_confirmed(1, *echo_server.address)
        for start in range(0, len(payload), chunk):
            peer.send_data(1, payload[start:start + chunk])
            echoed += peer.recv_data(1, len(payload[start:start + chunk]), timeout=10.0)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


def test_50_parallel_sessions_each_echo_64_kib(server, echo_server):
    def one_session(n: int) -> bytes:
        payload = random.Random(n).randbytes(64 << 10)
        with connect_v2(server.address, PASSWORD) as peer:
            peer.open_confirmed(1, *echo_server.address, timeout=10.0)
            peer.send_data(1, payload)
            return hashlib.sha256(peer.recv_data(1, len(payload), timeout=20.0)).digest()

    with ThreadPoolExecutor(max_workers=50, thread_name_prefix="test-session") as pool:
        results = list(pool.map(one_session, range(50)))
    expected = [hashlib.sha256(random.Random(n).randbytes(64 << 10)).digest() for n in range(50)]
    assert results == expected
    assert server.stats.sessions == 50
    assert echo_server.connections == 50


# ---- 7. bad input ends only its own session or stream --------------------------------------


def _bad_peers(address, echo_address):
    """Each yields a connection that misbehaves in its own way, then is dropped."""
    rng = random.Random(7)

    # random bytes straight after a good authentication
    peer = RawClient(address)
    peer.send_auth(PASSWORD)
    peer.send_raw(rng.randbytes(4096))
    yield peer

    # a frame header promising more data than ever comes, then the connection closes
    peer = RawClient(address)
    peer.send_auth(PASSWORD)
    peer.send_settings()
    peer.send_raw(frame(Command.SYN, 1) + bytes((Command.PSH, 0, 0, 0, 1, 0xFF, 0xFF, 1, 2)))
    yield peer

    # a stream whose target address is malformed: SYNACK error and FIN for that stream only
    peer = connect_v2(address, PASSWORD)
    peer.send_raw(frame(Command.SYN, 1) + frame(Command.PSH, 1, b"\x09not an address"))
    synack = peer.expect(Command.SYNACK, sid=1)
    assert synack.data
    peer.expect(Command.FIN, sid=1)
    peer.send_frame(Command.HEART_REQUEST, 0)
    peer.expect(Command.HEART_RESPONSE, sid=0)  # that session itself lives on
    yield peer

    # a reset in the middle of a relayed stream
    peer = connect_v2(address, PASSWORD)
    peer.open_confirmed(1, *echo_address)
    peer.send_data(1, bytes(100_000))
    peer.reset()
    yield None

    # not TLS at all
    with socket.create_connection(address) as plain:
        plain.sendall(b"\x16\x03\x01\x00\x05hello" + bytes(200))
        plain.settimeout(3.0)
        try:
            while plain.recv(4096):
                pass
        except ConnectionError:
            pass
    yield None


def test_garbage_does_not_disturb_a_concurrent_session(server, echo_server, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref")
    with connect_v2(server.address, PASSWORD) as good:
        echo_on_new_stream(good, 1, echo_server.address, b"before")
        for n, bad in enumerate(_bad_peers(server.address, echo_server.address)):
            if bad is not None:
                bad.close()
            echo_roundtrip(good, 1, f"after bad peer {n}".encode())
    # the server keeps accepting
    with connect_v2(server.address, PASSWORD) as fresh:
        echo_on_new_stream(fresh, 1, echo_server.address, b"fresh")
    # one log line each, never a traceback
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert noisy == [], [r.getMessage() for r in noisy]


def test_silent_connection_is_closed_after_the_handshake_deadline(make_server):
    server = make_server(handshake_timeout=0.5)
    with RawClient(server.address) as peer:  # TLS is up, but no authentication follows
        start = time.monotonic()
        assert peer.closed_within(3.0)
        assert 0.4 < time.monotonic() - start < 2.0
        assert peer.received == []
