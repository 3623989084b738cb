"""One test (or more) per requirement of anytls_ref/spec.py, each marked ``@pytest.mark.spec``.

The tests go through the pure layer, and through the net layer without a network where the rule
is enforced there: a ClientSession / ServerSession over a socketpair or a recording socket, run
on the test's own thread, and a Client whose pool is fed by hand. Two tests start a real Server
on loopback for what only the TLS path shows (padding0 across records, a wrong password).
tests/test_spec_coverage.py checks that every MUST has a test here or elsewhere.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import ssl
import threading
import time
from types import SimpleNamespace

import pytest

from anytls_ref import CLIENT_NAME, __version__
from anytls_ref.__main__ import main
from anytls_ref.auth import AUTH_OVERHEAD, check_auth, encode_auth, password_hash
from anytls_ref.effects import (
    CloseSession,
    NewPaddingScheme,
    OpenStream,
    Send,
    StreamClosed,
    StreamReady,
)
from anytls_ref.errors import AuthenticationError, LocalProtocolError, Reason, StreamOpenError
from anytls_ref.frame import (
    COMMANDS_WITH_DATA,
    FRAME_HEADER,
    HEADER_SIZE,
    Command,
    Frame,
    FrameDecoder,
    encode_frame,
)
from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.client_session import ClientSession
from anytls_ref.net.server import Server, ServerConfig, ServerSession
from anytls_ref.padding import (
    CHECK,
    DEFAULT,
    DEFAULT_SCHEME,
    Padder,
    padding0_length,
    parse_scheme,
    plan_packet,
    split_write,
)
from anytls_ref.params import ClientParams
from anytls_ref.reuse import IdlePool
from anytls_ref.rules import ALERT_NO_SETTINGS, ClientRules, ServerRules, State
from anytls_ref.settings import ClientSettings, ServerSettings, parse_kv
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr
from anytls_ref.version import (
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    SYNACK_WATCHDOG,
    OpenPlan,
    client_features,
    server_negotiate,
)
from wire import decode_all

TARGET = SocksAddr("example.com", 443)
OTHER_SCHEME = b"stop=3\n0=40-40\n1=150-150\n2=300-300"


# ---- helpers -------------------------------------------------------------------------------


class RecordingSock:
    """Stands in for the TLS socket of a session that is only written to: one item per write."""

    def __init__(self) -> None:
        self.records: list[bytes] = []

    def sendall(self, data) -> None:
        self.records.append(bytes(data))


def sent(effects) -> list[Frame]:
    return [f for e in effects if isinstance(e, Send) for f in decode_all(e.frame)]


def server_rules(state: str = "await-settings", **kw) -> ServerRules:
    rules = ServerRules(DEFAULT.md5, DEFAULT_SCHEME, **kw)
    if state != "await-settings":
        rules.receive(Frame(Command.SETTINGS, 0, ClientSettings(2, "t", DEFAULT.md5).encode()))
    if state == "stream-open":
        rules.receive(Frame(Command.SYN, 1))
    return rules


def client_rules() -> ClientRules:
    return ClientRules(CLIENT_NAME, DEFAULT.md5)


@pytest.fixture
def client():
    """A Client that never dials: tests put sessions in its pool by hand."""
    c = Client(ClientConfig(server=("127.0.0.1", 9), password="pw", insecure=True))
    yield c
    c.close()


def fake_session(client: Client, sock=None, *, seq: int = 1, scheme=DEFAULT,
                 rng: random.Random | None = None) -> ClientSession:
    sock = sock if sock is not None else RecordingSock()
    return ClientSession(client, sock, seq, scheme, Padder(scheme, rng or random.Random(seq)))


def drain(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    out = b""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


# ---- Client › Session ------------------------------------------------------------------------


@pytest.mark.spec("SESS-SETTINGS-FIRST")
def test_settings_frame_is_cmdsettings_with_version_name_and_md5():
    (frame,) = decode_all(client_rules().settings_frame())
    assert frame.command == Command.SETTINGS
    assert parse_kv(frame.data) == {"v": str(PROTOCOL_VERSION), "client": CLIENT_NAME,
                                    "padding-md5": DEFAULT.md5}


@pytest.mark.spec("SESS-SETTINGS-FIRST")
@pytest.mark.spec("PAD-PACKET1")
@pytest.mark.spec("SESS-SYN-SID-INCREASING")
def test_first_write_of_a_new_session_is_settings_syn_psh_and_later_streams_skip_settings(
        client):
    session = fake_session(client)
    first = session.open_stream(TARGET)
    assert len(session.sock.records) >= 1
    packet1 = decode_all(b"".join(session.sock.records))
    assert [f.command for f in packet1 if f.command != Command.WASTE] == [
        Command.SETTINGS, Command.SYN, Command.PSH]
    assert packet1[1].stream_id == packet1[2].stream_id == 1
    assert decode_socksaddr(packet1[2].data)[0] == TARGET
    # packet 1 is one write shaped by line 1 of the scheme (100-400): its records follow it
    assert all(100 <= len(r) < 400 for r in session.sock.records[:1])
    first.close()
    session.sock.records.clear()
    second = session.open_stream(TARGET)
    later = [f for f in decode_all(b"".join(session.sock.records)) if f.command != Command.WASTE]
    assert [(f.command, f.stream_id) for f in later] == [(Command.SYN, 2), (Command.PSH, 2)]
    second.close()


@pytest.mark.spec("FRAME-NO-DATA")
@pytest.mark.parametrize("command", [Command.SYN, Command.FIN, Command.HEART_REQUEST,
                                     Command.HEART_RESPONSE])
def test_commands_without_data_cannot_be_sent_with_data(command):
    assert command not in COMMANDS_WITH_DATA
    assert encode_frame(command, 1) == FRAME_HEADER.pack(command, 1, 0)
    with pytest.raises(LocalProtocolError):
        encode_frame(command, 1, b"x")


@pytest.mark.spec("FRAME-NO-DATA")
def test_data_received_on_a_command_without_data_is_skipped_and_the_stream_stays_in_sync():
    wire = FRAME_HEADER.pack(Command.SYN, 1, 4) + b"junk" + encode_frame(Command.PSH, 1, b"ok")
    syn, psh = decode_all(wire)
    assert (syn.command, syn.data, syn.skipped) == (Command.SYN, b"", 4)
    assert (psh.command, psh.data) == (Command.PSH, b"ok")
    rules = server_rules("established")
    assert OpenStream(1) in rules.receive(syn)


@pytest.mark.spec("SESS-WASTE-DISCARD")
@pytest.mark.parametrize("make", [server_rules, client_rules], ids=["server", "client"])
def test_waste_is_read_completely_and_discarded(make):
    rules = make() if make is client_rules else make("established")
    wire = encode_frame(Command.WASTE, 0, bytes(1000)) + encode_frame(Command.HEART_REQUEST, 0)
    waste, after = decode_all(wire)
    assert len(waste.data) == 1000
    assert rules.receive(waste) == []
    assert sent(rules.receive(after)) == [Frame(Command.HEART_RESPONSE, 0)]


@pytest.mark.spec("SESS-HEART-RESPOND")
@pytest.mark.parametrize("make", [server_rules, client_rules], ids=["server", "client"])
def test_heart_request_is_answered_with_heart_response(make):
    rules = make() if make is client_rules else make("established")
    assert sent(rules.receive(Frame(Command.HEART_REQUEST, 5))) == [
        Frame(Command.HEART_RESPONSE, 5)]


@pytest.mark.spec("SESS-SYNACK-AFTER-DIAL")
def test_synack_is_sent_when_the_dial_reports_not_when_syn_arrives():
    rules = server_rules("established")
    assert rules.receive(Frame(Command.SYN, 1)) == [OpenStream(1)]  # no SYNACK yet
    assert sent(rules.stream_result(1, None)) == [Frame(Command.SYNACK, 1)]


@pytest.mark.spec("SESS-SYNACK-ERROR-CLOSE")
def test_synack_with_error_text_closes_the_stream():
    rules = client_rules()
    rules.open_stream(1)
    assert rules.receive(Frame(Command.SYNACK, 1, b"connection refused")) == [
        StreamReady(1, "connection refused", Reason.REFUSED), StreamClosed(1)]
    assert rules.streams == set()


@pytest.mark.spec("SESS-SYNACK-ERROR-CLOSE")
def test_client_session_fails_and_closes_the_stream_on_a_synack_error(client):
    ours, peer = socket.socketpair()
    with peer:
        session = fake_session(client, ours)
        stream = session.open_stream(TARGET)
        peer.sendall(encode_frame(Command.SYNACK, 1, b"dial failed"))
        peer.shutdown(socket.SHUT_WR)
        session.run_reader()  # on this thread: the SYNACK, then EOF
        with pytest.raises(StreamOpenError, match="dial failed"):
            stream.wait_open(OpenPlan(wait=True, deadline=1.0), time.monotonic())
        assert stream.recv(timeout=0) == b""  # closed by the SYNACK, not by the session's end
        stream.close()


@pytest.mark.spec("SESS-SETTINGS-CLIENT-NAME")
def test_settings_carry_our_real_name_and_version():
    assert CLIENT_NAME == f"anytls-ref/{__version__}"
    settings = ClientSettings.decode(decode_all(client_rules().settings_frame())[0].data)
    assert settings.client == CLIENT_NAME


@pytest.mark.spec("SESS-ALERT-LOG-CLOSE")
def test_client_rules_close_the_session_on_alert():
    rules = client_rules()
    rules.open_stream(1)
    assert rules.receive(Frame(Command.ALERT, 0, b"too old")) == [
        CloseSession(Reason.PEER_ALERT, "server alert: too old", alert="too old")]
    assert rules.state is State.CLOSED
    assert rules.receive(Frame(Command.PSH, 1, b"late")) == []


@pytest.mark.spec("SESS-ALERT-LOG-CLOSE")
def test_client_session_logs_the_alert_and_closes_the_connection(client, caplog):
    ours, peer = socket.socketpair()
    with peer:
        session = fake_session(client, ours)
        stream = session.open_stream(TARGET)
        peer.sendall(encode_frame(Command.ALERT, 0, b"go away"))
        with caplog.at_level(logging.WARNING):
            session.run_reader()  # returns once the Alert has closed the session
        assert session.closed.is_set() and session.alert == "go away"
        assert any("go away" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)
        drain(peer)
        assert peer.recv(1) == b""  # our side of the connection is closed
        stream.close()


@pytest.mark.spec("SESS-ALERT-LOG-CLOSE")
@pytest.mark.spec("SESS-REJECT-ALERT")
def test_server_sends_alert_then_closes():
    rules = server_rules(min_version=2)
    effects = rules.receive(Frame(Command.SETTINGS, 0, ClientSettings(1, "old", DEFAULT.md5)
                                  .encode()))
    assert [type(e) for e in effects] == [Send, CloseSession]
    assert sent(effects)[0].command == Command.ALERT
    assert rules.state is State.CLOSED


# ---- cmdUpdatePaddingScheme ------------------------------------------------------------------


@pytest.mark.spec("PAD-UPDATE-SEND")
@pytest.mark.parametrize("md5", ["0" * 32, None])
def test_server_sends_its_scheme_when_the_client_md5_differs_or_is_missing(md5):
    rules = ServerRules(scheme_md5 := parse_scheme(OTHER_SCHEME).md5, OTHER_SCHEME)
    assert scheme_md5 != md5
    out = sent(rules.receive(Frame(Command.SETTINGS, 0, ClientSettings(2, "t", md5).encode())))
    assert out[0] == Frame(Command.UPDATE_PADDING_SCHEME, 0, OTHER_SCHEME)


@pytest.mark.spec("PAD-UPDATE-SEND")
def test_server_sends_no_scheme_when_the_md5_matches():
    out = sent(server_rules().receive(
        Frame(Command.SETTINGS, 0, ClientSettings(2, "t", DEFAULT.md5).encode())))
    assert Command.UPDATE_PADDING_SCHEME not in [f.command for f in out]


@pytest.mark.spec("PAD-UPDATE-NEW-SESSIONS")
def test_client_rules_hand_a_received_scheme_to_the_client_and_keep_their_own():
    rules = client_rules()
    assert rules.receive(Frame(Command.UPDATE_PADDING_SCHEME, 0, OTHER_SCHEME)) == [
        NewPaddingScheme(OTHER_SCHEME)]
    assert rules.padding_md5 == DEFAULT.md5


@pytest.mark.spec("PAD-UPDATE-NEW-SESSIONS")
@pytest.mark.spec("PAD-STORE-PER-CLIENT")
def test_the_scheme_is_stored_on_the_client_and_used_by_its_next_session_only(client):
    other_client = Client(ClientConfig(server=("127.0.0.1", 9), password="pw", insecure=True))
    try:
        ours, peer = socket.socketpair()
        with peer:
            session = fake_session(client, ours)
            peer.sendall(encode_frame(Command.UPDATE_PADDING_SCHEME, 0, OTHER_SCHEME))
            peer.shutdown(socket.SHUT_WR)
            session.run_reader()
        new = parse_scheme(OTHER_SCHEME)
        assert client.scheme.md5 == new.md5  # the Client object holds it ...
        assert other_client.scheme is DEFAULT  # ... and only this Client
        assert session.padder.scheme is DEFAULT  # the session that got it keeps its own
        # a new session is built from client.scheme (as Client._new_session does)
        later = fake_session(client, seq=2, scheme=client.scheme)
        later.open_stream(TARGET).close()
        settings = ClientSettings.decode(decode_all(b"".join(later.sock.records))[0].data)
        assert settings.padding_md5 == new.md5
    finally:
        other_client.close()


@pytest.mark.spec("PAD-UPDATE-NEW-SESSIONS")
def test_an_unusable_scheme_from_the_server_is_not_used(client, caplog):
    client.update_padding_scheme(b"no stop line", "sess 1")
    assert client.scheme is DEFAULT
    assert "keeping ours" in caplog.text


# ---- paddingScheme -----------------------------------------------------------------------------


@pytest.mark.spec("PAD-PADDING0-WITH-AUTH")
def test_padding0_is_sent_in_the_authentication_request():
    request = encode_auth(password_hash("pw"), padding0_length(DEFAULT, random.Random(1)))
    assert len(request) == AUTH_OVERHEAD + 30
    checked = check_auth(request, password_hash("pw"))
    assert (checked.padding0_length, checked.padding0_missing, checked.rest) == (30, 0, b"")


@pytest.mark.spec("PAD-SPLIT-REMAINDER")
def test_payload_left_after_the_plan_is_sent_directly():
    payload = bytes(range(256)) * 4
    assert split_write(payload, [100, CHECK, 200]) == [payload[:100], payload[100:300],
                                                      payload[300:]]


@pytest.mark.spec("PAD-SPLIT-WASTE")
def test_records_after_the_payload_is_used_up_are_waste_of_zeros():
    payload = encode_frame(Command.PSH, 1, b"hello")  # 12 bytes
    first, second = split_write(payload, [100, 300])
    psh, fill = decode_all(first)  # the end of the payload, topped up to the record size
    assert len(first) == 100 and psh.command == Command.PSH
    assert fill == Frame(Command.WASTE, 0, bytes(100 - len(payload) - HEADER_SIZE))
    # nothing left: one Waste frame whose data length is the record size (as Go)
    assert decode_all(second) == [Frame(Command.WASTE, 0, bytes(300))]


@pytest.mark.spec("PAD-CHECK-MARK")
@pytest.mark.parametrize("size, records", [(50, 1), (100, 1), (150, 2), (400, 3)])
def test_check_mark_stops_padding_once_the_write_is_used_up(size, records):
    out = split_write(bytes(size), [100, CHECK, 200, CHECK])
    assert len(out) == records
    assert sum(map(len, out)) >= size


@pytest.mark.spec("PAD-PACKET2")
def test_the_first_user_write_after_packet_1_is_shaped_as_packet_2(client):
    session = fake_session(client, rng=random.Random(11))
    stream = session.open_stream(TARGET)  # packet 1
    session.sock.records.clear()
    hello = bytes(300)  # a TLS ClientHello, say
    stream.sendall(hello)  # packet 2
    replay = random.Random(11)
    plan_packet(DEFAULT, 1, replay)
    plan2 = plan_packet(DEFAULT, 2, replay)
    assert session.sock.records == split_write(encode_frame(Command.PSH, 1, hello), plan2)
    stream.close()


@pytest.mark.spec("PAD-UNDEFINED-DIRECT")
def test_packets_without_a_line_and_packets_from_stop_on_are_written_as_they_are():
    padder = Padder(parse_scheme(b"stop=4\n1=100-100"), random.Random(1))
    assert [len(r) for r in padder.records(bytes(10))] == [100]  # packet 1: its line
    assert padder.records(b"x" * 10) == [b"x" * 10]  # packet 2: no line
    assert padder.records(b"y" * 10) == [b"y" * 10]  # packet 3: no line
    assert not padder.active  # packet 4 = stop: the session writes directly from now on
    assert plan_packet(padder.scheme, 4, random.Random(1)) is None


# ---- Client › Reuse ----------------------------------------------------------------------------


@pytest.mark.spec("REUSE-IMPLEMENT")
@pytest.mark.spec("REUSE-RETURN-IDLE")
def test_a_finished_stream_returns_its_session_and_the_next_stream_reuses_it(client):
    session = fake_session(client)
    stream = session.open_stream(TARGET)
    assert client.idle_sessions() == []
    stream.close()  # the relay is done and the session had no error
    assert client.idle_sessions() == [session]
    assert session.seq in client._pool._idle and client._pool.idle_since(session.seq) is not None
    again = client.open_stream(TARGET)  # no dial: the idle session carries it
    assert again.session is session and again.stream_id == 2
    assert client.stats.reused == 1 and client.stats.sessions == 0
    again.close()


@pytest.mark.spec("REUSE-RETURN-IDLE")
def test_a_session_whose_loop_failed_is_not_put_back(client):
    session = fake_session(client)
    stream = session.open_stream(TARGET)
    session.closed.set()  # its event loop ended with an error
    session.error = ConnectionResetError("gone")
    stream.close()
    assert client.idle_sessions() == []


@pytest.mark.spec("REUSE-NEWEST-IDLE")
def test_the_idle_session_with_the_largest_seq_is_taken():
    pool: IdlePool[str] = IdlePool()
    for seq, name, idle_since in [(1, "a", 30.0), (3, "c", 10.0), (2, "b", 20.0)]:
        pool.put(seq, name, idle_since)
    assert [pool.take(), pool.take(), pool.take(), pool.take()] == [(3, "c"), (2, "b"),
                                                                    (1, "a"), None]


@pytest.mark.spec("REUSE-NEWEST-IDLE")
@pytest.mark.spec("REUSE-NEW-SESSION")
def test_client_checks_the_pool_before_dialing(client, monkeypatch):
    dialed = []
    old, new = fake_session(client, seq=1), fake_session(client, seq=2)
    for s in (old, new):
        s.next_stream_id = 2  # as after a first stream
        client._pool.put(s.seq, s, time.monotonic())

    def dial() -> ClientSession:
        dialed.append(1)
        session = fake_session(client, seq=3)
        session.next_stream_id = 2  # skip the first stream's wait for the server's version
        return session

    monkeypatch.setattr(client, "_new_session", dial)
    first, second = client.open_stream(TARGET), client.open_stream(TARGET)
    assert (first.session, second.session, dialed) == (new, old, [])
    third = client.open_stream(TARGET)  # nothing idle any more: a new session
    assert dialed == [1] and third.session.seq == 3
    for s in (first, second, third):
        s.close()


@pytest.mark.spec("REUSE-SEQ-INCREASING")
def test_seq_increases_within_a_client():
    pool: IdlePool[str] = IdlePool()
    seqs = [pool.next_seq() for _ in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


@pytest.mark.spec("REUSE-CLEANUP")
@pytest.mark.spec("PARAM-MIN-IDLE")
def test_pool_expiry_closes_the_oldest_and_keeps_min_idle_newest():
    pool: IdlePool[str] = IdlePool()
    for seq in (1, 2, 3, 4):
        pool.put(seq, f"s{seq}", 0.0)
    pool.put(5, "s5", 95.0)
    assert pool.expire(now=100.0, idle_timeout=60.0, min_idle=2) == ["s3", "s2", "s1"]
    assert pool.sessions() == ["s5", "s4"]


@pytest.mark.spec("REUSE-CLEANUP")
@pytest.mark.spec("PARAM-IDLE-CHECK-INTERVAL")
@pytest.mark.spec("PARAM-IDLE-TIMEOUT")
def test_client_cleanup_thread_closes_idle_sessions_regularly():
    params = ClientParams("pw", idle_session_check_interval=0.02, idle_session_timeout=0.05)
    c = Client(ClientConfig(server=("127.0.0.1", 9), password="pw", insecure=True,
                            params=params))
    closed = threading.Event()
    idle = SimpleNamespace(shutdown=lambda reason: closed.set(), label="sess 1")
    try:
        c._pool.put(1, idle, time.monotonic())
        c._start_cleaner()
        assert closed.wait(3.0), "the idle session was not closed"
        assert c.idle_sessions() == []
    finally:
        c.close()  # stops and joins the cleanup thread


# ---- Server › Authentication -------------------------------------------------------------------


@pytest.mark.spec("AUTH-SERVER-VERIFY")
def test_auth_check_accepts_the_hash_and_accounts_for_all_of_padding0():
    hashed = password_hash("pw")
    request = encode_auth(hashed, 100)
    partial = check_auth(request[:AUTH_OVERHEAD + 40], hashed)
    assert (partial.padding0_missing, partial.rest) == (60, b"")
    whole = check_auth(request + b"FRAMES", hashed)
    assert (whole.padding0_missing, whole.rest) == (0, b"FRAMES")


@pytest.mark.spec("AUTH-SERVER-REJECT")
@pytest.mark.parametrize("first_read", [b"", bytes(33), encode_auth(password_hash("nope"), 0)])
def test_auth_check_rejects_a_short_or_wrong_request(first_read):
    with pytest.raises(AuthenticationError):
        check_auth(first_read, password_hash("pw"))


@pytest.fixture
def live_server():
    server = Server(ServerConfig(listen=("127.0.0.1", 0), password="pw", handshake_timeout=5.0))
    server.start()
    yield server
    server.close()


def tls_connect(address) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock = context.wrap_socket(socket.create_connection(address, timeout=5.0))
    sock.settimeout(5.0)
    return sock


@pytest.mark.spec("AUTH-SERVER-VERIFY")
def test_server_reads_all_of_padding0_even_across_tls_records(live_server):
    junk = b"\xff" * 500  # padding0 content is unspecified: it must never be read as frames
    with tls_connect(live_server.address) as tls:
        tls.sendall(password_hash("pw") + (1000).to_bytes(2, "big") + junk)
        time.sleep(0.05)  # let the first record be read on its own
        tls.sendall(junk + encode_frame(Command.SETTINGS, 0,
                                        ClientSettings(2, "t", DEFAULT.md5).encode()))
        decoder = FrameDecoder()
        while not (frames := decoder.frames()):
            data = tls.recv(1 << 16)
            assert data, "the server closed instead of answering cmdSettings"
            decoder.feed(data)
        assert frames[0] == Frame(Command.SERVER_SETTINGS, 0, ServerSettings(2).encode())
    assert live_server.stats.sessions == 1


@pytest.mark.spec("AUTH-SERVER-REJECT")
def test_server_closes_the_connection_after_a_wrong_password(live_server):
    with tls_connect(live_server.address) as tls:
        tls.sendall(encode_auth(password_hash("wrong"), 0)
                    + encode_frame(Command.SETTINGS, 0, ClientSettings(2).encode()))
        try:
            data = tls.recv(1 << 16)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        assert data == b""
    assert live_server.stats.auth_failures == 1 and live_server.stats.sessions == 0


# ---- Server › Session --------------------------------------------------------------------------


@pytest.mark.spec("SESS-SYN-BEFORE-SETTINGS")
@pytest.mark.spec("SESS-REJECT-ALERT")
def test_syn_before_settings_is_rejected_with_alert_then_close():
    rules = server_rules()
    effects = rules.receive(Frame(Command.SYN, 1))
    assert sent(effects) == [Frame(Command.ALERT, 0, ALERT_NO_SETTINGS.encode())]
    assert isinstance(effects[-1], CloseSession)
    assert not any(isinstance(e, OpenStream) for e in effects)
    assert rules.state is State.CLOSED


def stub_server(**config) -> SimpleNamespace:
    """What a ServerSession needs of its Server."""
    conf = SimpleNamespace(min_version=1, trace=False, address_timeout=1.0, dial_timeout=1.0)
    for key, value in config.items():
        setattr(conf, key, value)
    return SimpleNamespace(scheme=DEFAULT, config=conf, stats=SimpleNamespace(add=lambda **k: 0))


@pytest.mark.spec("SESS-SYN-BEFORE-SETTINGS")
@pytest.mark.spec("SESS-REJECT-ALERT")
def test_server_session_answers_an_early_syn_with_alert_and_closes_the_connection():
    ours, peer = socket.socketpair()
    with peer:
        session = ServerSession(stub_server(), ours, "conn 1")
        peer.sendall(encode_frame(Command.SYN, 1) + encode_frame(Command.PSH, 1, b"x"))
        session.run_reader()  # returns: the session ended by itself
        assert session.closed.is_set() and session.streams == {}
        assert decode_all(drain(peer)) == [Frame(Command.ALERT, 0, ALERT_NO_SETTINGS.encode())]
        assert peer.recv(1) == b""


@pytest.mark.spec("SESS-MAY-REJECT")
@pytest.mark.spec("COMPAT-MIN-REJECT")
def test_server_may_reject_old_versions_but_only_when_asked():
    assert server_negotiate(1).reject is None  # default: served with version-1 rules
    rejected = server_negotiate(1, MIN_PROTOCOL_VERSION)
    assert rejected.reject and "version 1" in rejected.reject
    assert server_negotiate(2, MIN_PROTOCOL_VERSION).reject is None


@pytest.mark.spec("SESS-SERVER-SETTINGS")
@pytest.mark.parametrize("version, reply", [(1, None), (2, 2), (3, 3), (9, 3)])
def test_server_settings_follow_settings_at_once_for_v2_clients(version, reply):
    out = sent(server_rules().receive(
        Frame(Command.SETTINGS, 0, ClientSettings(version, "t", DEFAULT.md5).encode())))
    expected = [] if reply is None else [
        Frame(Command.SERVER_SETTINGS, 0, ServerSettings(reply).encode())]
    assert out == expected


# ---- Protocol Parameters ---------------------------------------------------------------------


@pytest.mark.spec("PARAM-PASSWORD")
def test_client_params_require_a_password():
    with pytest.raises(TypeError):
        ClientParams()  # type: ignore[call-arg]
    assert ClientParams("pw").password == "pw"


@pytest.mark.spec("PARAM-PASSWORD")
@pytest.mark.parametrize("argv", [
    ["client", "-l", "127.0.0.1:0", "-s", "127.0.0.1:1"],
    ["client", "-l", "127.0.0.1:0", "-s", "anytls://127.0.0.1:1/"],
    ["server", "-l", "127.0.0.1:0"],
])
def test_command_line_without_a_password_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("anytls-ref: error: ") and "password" in err and err.count("\n") == 1


@pytest.mark.spec("PARAM-NO-TLS")
def test_protocol_parameters_hold_no_tls_settings():
    # the server's one protocol parameter, the padding scheme, is ServerConfig.padding_scheme
    names = {f.name for f in dataclasses.fields(ClientParams)}
    assert names == {"password", "idle_session_check_interval", "idle_session_timeout",
                     "min_idle_session"}


@pytest.mark.spec("PARAM-IDLE-CHECK-INTERVAL")
@pytest.mark.spec("PARAM-IDLE-TIMEOUT")
@pytest.mark.spec("PARAM-MIN-IDLE")
@pytest.mark.spec("PARAM-PADDING-SCHEME")
def test_optional_parameters_have_the_spec_example_defaults():
    params = ClientParams("pw")
    assert (params.idle_session_check_interval, params.idle_session_timeout,
            params.min_idle_session) == (30.0, 60.0, 0)
    assert ServerConfig(("127.0.0.1", 0), "pw").padding_scheme == DEFAULT_SCHEME


# ---- Protocol Version 2, Compatibility Strategy ----------------------------------------------


@pytest.mark.spec("V2-BOTH-SIDES")
def test_v2_features_need_both_sides():
    assert not client_features(None).synack  # no cmdServerSettings: version 1
    assert client_features(2).synack and client_features(2).heartbeat
    rules = server_rules()
    rules.receive(Frame(Command.SETTINGS, 0, ClientSettings(1, "old", DEFAULT.md5).encode()))
    assert not rules.features.synack
    rules.receive(Frame(Command.SYN, 1))
    assert sent(rules.stream_result(1, None)) == []  # a version-1 client gets no SYNACK


@pytest.mark.spec("V2-SYNACK-TIMEOUT")
def test_the_synack_watchdog_is_go_s_3_seconds():
    assert SYNACK_WATCHDOG == 3.0


@pytest.mark.spec("COMPAT-OLD-PEER-TESTS")
@pytest.mark.spec("COMPAT-BUMP")
def test_an_older_v2_peer_is_served_with_version_2():
    assert PROTOCOL_VERSION == 3 and MIN_PROTOCOL_VERSION == 2
    rules = server_rules()
    out = sent(rules.receive(
        Frame(Command.SETTINGS, 0, ClientSettings(2, "anytls-go/0.0.8", DEFAULT.md5).encode())))
    assert out == [Frame(Command.SERVER_SETTINGS, 0, b"v=2")]
    rules.receive(Frame(Command.SYN, 1))
    assert sent(rules.stream_result(1, None)) == [Frame(Command.SYNACK, 1)]
    client = client_rules()
    client.receive(Frame(Command.SERVER_SETTINGS, 0, b"v=2"))
    assert client.features.version == 2
