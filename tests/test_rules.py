"""Spec "Client › Session" command rules and "Server › Session" (anytls_ref.rules).

The rules objects take decoded frames and answer with effects; no I/O. The table test drives every
cell of rules.TABLE (role, situation, command; a frame without and with data) and holds the code to
the effects the table documents; the tests after it pin single rules.
"""

from __future__ import annotations

import pytest

from anytls_ref.effects import (
    CloseSession,
    HeartbeatAnswered,
    NewPaddingScheme,
    Note,
    OpenStream,
    PeerVersion,
    Send,
    StreamClosed,
    StreamData,
    StreamFinished,
    StreamReady,
)
from anytls_ref.errors import LocalProtocolError, Reason
from anytls_ref.frame import FRAME_HEADER, Command, Frame, FrameDecoder, command_name, encode_frame
from anytls_ref.padding import DEFAULT, DEFAULT_SCHEME
from anytls_ref.rules import (
    ALERT_NO_SETTINGS,
    STREAM_COMMANDS,
    TABLE,
    ClientRules,
    Role,
    ServerRules,
    Situation,
    State,
)

MD5 = DEFAULT.md5
UNKNOWN = 42


def frame(command: int, stream_id: int = 0, data: bytes = b"") -> Frame:
    """The Frame a peer's bytes decode to (data on a no-data command is skipped, as on the wire)."""
    decoder = FrameDecoder()
    decoder.feed(FRAME_HEADER.pack(command, stream_id, len(data)) + data)
    (result,) = decoder.frames()
    return result


def settings(version: int = 2, md5: str | None = MD5) -> Frame:
    text = f"v={version}" + (f"\npadding-md5={md5}" if md5 is not None else "")
    return frame(Command.SETTINGS, 0, text.encode())


def sent(effects) -> list[Frame]:
    """The frames of the Send effects, decoded."""
    decoder = FrameDecoder()
    for effect in effects:
        if isinstance(effect, Send):
            decoder.feed(effect.frame)
    return decoder.frames()


def server(state: str = "established", min_version: int = 1) -> ServerRules:
    rules = ServerRules(MD5, DEFAULT_SCHEME, min_version=min_version)
    if state in ("established", "stream-open", "stream-ended", "got-fin"):
        rules.receive(settings())
    if state in ("stream-open", "stream-ended", "got-fin"):
        rules.receive(frame(Command.SYN, 1))
    if state == "stream-ended":
        rules.close_stream(1)
    if state == "got-fin":
        rules.receive(frame(Command.FIN, 1))
    if state == "closed":
        rules.closed()
    return rules


def client(state: str = "established") -> ClientRules:
    rules = ClientRules("anytls-ref/test", MD5)
    if state in ("stream-open", "sent-fin"):
        rules.open_stream(1)
    if state == "sent-fin":
        rules.finish_stream(1)
    if state == "closed":
        rules.closed()
    return rules


# ---- the table: rules.TABLE, every cell driven and held to its documented effects ------------

#: how to bring rules into each situation of the table, for a frame on stream id 1
SITUATED = {
    Role.SERVER: {Situation.AWAIT_SETTINGS: "await-settings", Situation.ESTABLISHED: "established",
                  Situation.NEW_STREAM: "established", Situation.OPEN_STREAM: "stream-open",
                  Situation.GOT_FIN: "got-fin", Situation.OTHER_STREAM: "stream-ended",
                  Situation.CLOSED: "closed"},
    Role.CLIENT: {Situation.ESTABLISHED: "established", Situation.OPEN_STREAM: "stream-open",
                  Situation.SENT_FIN: "sent-fin", Situation.OTHER_STREAM: "established",
                  Situation.CLOSED: "closed"},
}


def situated(role: Role, situation: Situation):
    return (server if role is Role.SERVER else client)(SITUATED[role][situation])

# representative data per command for the "with data" column
DATA = {
    Command.SETTINGS: f"v=2\npadding-md5={MD5}".encode(),
    Command.SERVER_SETTINGS: b"v=2",
    Command.UPDATE_PADDING_SCHEME: DEFAULT_SCHEME,
}

CELLS = [
    pytest.param(role, situation, command, with_data,
                 id=f"{role.value}-{situation.value}-{command_name(command)}-"
                    f"{'data' if with_data else 'empty'}")
    for (role, situation, command) in TABLE
    for with_data in (False, True)
]


def describe(effect) -> str:
    if isinstance(effect, Send):
        (out,) = sent([effect])
        return f"Send:{Command(out.command).name}"
    return type(effect).__name__


def test_table_covers_every_command_in_every_situation():
    stream_rows = {Situation.OPEN_STREAM, Situation.OTHER_STREAM, Situation.NEW_STREAM,
                   Situation.SENT_FIN, Situation.GOT_FIN}
    for role, situations in SITUATED.items():
        for situation in situations:
            commands = {c for (r, s, c) in TABLE if (r, s) == (role, situation)}
            if situation in stream_rows:
                assert commands == STREAM_COMMANDS, (role, situation)
            elif situation is Situation.ESTABLISHED:
                assert commands == set(Command) - STREAM_COMMANDS, (role, situation)
            else:  # before cmdSettings and once closed, every command
                assert commands == set(Command), (role, situation)


@pytest.mark.parametrize("role, situation, command, with_data", CELLS)
def test_every_cell_gives_its_documented_effects(role, situation, command, with_data):
    rules = situated(role, situation)
    data = DATA.get(command, b"some data") if with_data else b""
    received = frame(command, 1, data)
    assert rules.situation(received) is situation
    effects = rules.receive(received)
    rule = TABLE[role, situation, command]
    assert " ".join(describe(e) for e in effects) == (rule.data if with_data else rule.empty)
    for out in sent(effects):  # and whatever we send is itself valid
        encode_frame(out.command, out.stream_id, out.data)


@pytest.mark.parametrize("role", list(Role))
def test_an_unknown_command_is_noted_and_skipped_and_nothing_once_closed(role):
    rules = server() if role is Role.SERVER else client()
    (note,) = rules.receive(frame(UNKNOWN, 1, b"data"))
    assert isinstance(note, Note) and "unknown command 42" in note.text
    rules.closed()
    assert rules.receive(frame(UNKNOWN, 1, b"data")) == []


def test_a_subclass_replaces_a_handler_of_the_table():
    # the probe's faulty servers (tests/test_probe.py) are subclasses that replace a handler
    class WasteIsFatal(ServerRules):
        def _on_waste(self, f):
            return [CloseSession(Reason.CLIENT_REJECTED, "waste")]

    rules = WasteIsFatal(MD5, DEFAULT_SCHEME)
    rules.receive(settings())
    assert rules.receive(frame(Command.WASTE, 0)) == [CloseSession(Reason.CLIENT_REJECTED, "waste")]


# ---- server: Settings first ------------------------------------------------------------------


@pytest.mark.spec("SESS-SYN-BEFORE-SETTINGS")
@pytest.mark.spec("SESS-REJECT-ALERT")
def test_syn_before_settings_is_rejected_with_an_alert_then_close():
    rules = server("await-settings")
    effects = rules.receive(frame(Command.SYN, 1))
    assert sent(effects) == [Frame(Command.ALERT, 0, ALERT_NO_SETTINGS.encode())]
    assert ALERT_NO_SETTINGS == "client did not send its settings"
    assert isinstance(effects[-1], CloseSession)
    assert rules.state is State.CLOSED
    assert rules.receive(settings()) == []  # a closed session does nothing more


@pytest.mark.spec("SESS-SYN-BEFORE-SETTINGS")
def test_empty_settings_is_ignored_and_a_later_syn_is_rejected():
    # decisions.md D8 (as Go)
    rules = server("await-settings")
    assert rules.receive(frame(Command.SETTINGS, 0, b"")) == [Note("empty cmdSettings ignored")]
    assert rules.state is State.AWAIT_SETTINGS
    assert sent(rules.receive(frame(Command.SYN, 1)))[0].command == Command.ALERT


def test_second_settings_is_ignored():
    rules = server("established")
    assert sent(rules.receive(settings(version=2, md5="0" * 32))) == []
    assert rules.client_settings.padding_md5 == MD5


@pytest.mark.spec("PAD-UPDATE-SEND")
def test_matching_md5_gets_no_padding_update():
    assert sent(server("await-settings").receive(settings(2, MD5))) == [
        Frame(Command.SERVER_SETTINGS, 0, b"v=2")]


@pytest.mark.spec("PAD-UPDATE-SEND")
@pytest.mark.spec("SESS-SERVER-SETTINGS")
def test_md5_mismatch_sends_update_padding_scheme_before_server_settings():
    effects = server("await-settings").receive(settings(2, "0" * 32))
    assert sent(effects) == [
        Frame(Command.UPDATE_PADDING_SCHEME, 0, DEFAULT_SCHEME),
        Frame(Command.SERVER_SETTINGS, 0, b"v=2"),
    ]


@pytest.mark.spec("PAD-UPDATE-SEND")
def test_missing_md5_counts_as_a_mismatch():
    assert sent(server("await-settings").receive(settings(2, None)))[0].command == (
        Command.UPDATE_PADDING_SCHEME)


@pytest.mark.spec("V2-BOTH-SIDES")
def test_v1_client_gets_no_server_settings_and_no_synack():
    # decisions.md D7: served, without version-2 features
    rules = server("await-settings")
    assert sent(rules.receive(settings(version=1))) == []
    assert rules.state is State.ESTABLISHED
    rules.receive(frame(Command.SYN, 1))
    assert sent(rules.stream_result(1, None)) == []


@pytest.mark.spec("SESS-REJECT-ALERT")
@pytest.mark.spec("COMPAT-MIN-REJECT")
def test_v1_client_is_rejected_with_an_alert_when_min_version_is_2():
    rules = server("await-settings", min_version=2)
    effects = rules.receive(settings(version=1))
    (alert,) = sent(effects)
    assert alert.command == Command.ALERT and b"version" in alert.data
    assert isinstance(effects[-1], CloseSession)
    assert rules.state is State.CLOSED


@pytest.mark.spec("SESS-SERVER-SETTINGS")
def test_v5_client_gets_server_settings_v3():
    # decisions.md D14: the version both speak, min(client, PROTOCOL_VERSION)
    rules = server("await-settings")
    assert sent(rules.receive(settings(version=5))) == [Frame(Command.SERVER_SETTINGS, 0, b"v=3")]
    assert rules.features.version == 3


# ---- both sides: heartbeats ------------------------------------------------------------------


@pytest.mark.spec("SESS-HEART-RESPOND")
@pytest.mark.parametrize("make", [server, client], ids=["server", "client"])
@pytest.mark.parametrize("sid", [0, 7])
def test_heart_request_is_answered_on_the_same_stream_id(make, sid):
    effects = make().receive(frame(Command.HEART_REQUEST, sid))
    assert sent(effects) == [Frame(Command.HEART_RESPONSE, sid)]


@pytest.mark.spec("SESS-HEART-RESPOND")
def test_heart_request_is_answered_even_before_settings():
    # decisions.md D19
    effects = server("await-settings").receive(frame(Command.HEART_REQUEST, 0))
    assert sent(effects) == [Frame(Command.HEART_RESPONSE, 0)]


# ---- server: streams ------------------------------------------------------------------------


def test_fin_for_an_unknown_stream_is_ignored():
    # decisions.md D11
    rules = server("stream-open")
    assert rules.receive(frame(Command.FIN, 99)) == []
    assert rules.streams == {1}


def test_a_client_fin_half_closes_and_our_fin_follows_when_the_target_ends():
    # decisions.md D40: the client is done sending; the target's answer still goes
    rules = server("stream-open")
    assert rules.receive(frame(Command.FIN, 1)) == [StreamFinished(1)]
    assert rules.receive(frame(Command.FIN, 1)) == []  # a second FIN changes nothing
    assert sent(rules.close_stream(1)) == [Frame(Command.FIN, 1)]  # the target ended
    assert rules.close_stream(1) == [] and rules.streams == set()


def test_local_close_sends_fin_once():
    rules = server("stream-open")
    assert sent(rules.close_stream(1)) == [Frame(Command.FIN, 1)]
    assert rules.close_stream(1) == []


def test_overlapping_streams_syn_2_before_fin_1():
    # sing-anytls returns the session to its pool before writing FIN (peers.md §2; D11)
    rules = server("stream-open")
    assert rules.receive(frame(Command.SYN, 2)) == [OpenStream(2)]
    assert rules.receive(frame(Command.PSH, 2, b"b")) == [StreamData(2, b"b")]
    assert rules.receive(frame(Command.PSH, 1, b"a")) == [StreamData(1, b"a")]
    assert rules.receive(frame(Command.FIN, 1)) == [StreamFinished(1)]
    assert rules.streams == {1, 2}
    assert sent(rules.close_stream(1)) == [Frame(Command.FIN, 1)]
    assert rules.streams == {2}


def test_stream_id_reused_after_fin():
    # ssrlive clients open every stream as sid 1 (peers.md §2; D11)
    rules = server("stream-open")
    rules.receive(frame(Command.FIN, 1))
    rules.close_stream(1)  # its target ended: our FIN, the stream is over both ways
    assert rules.receive(frame(Command.SYN, 1)) == [OpenStream(1)]
    assert rules.receive(frame(Command.PSH, 1, b"again")) == [StreamData(1, b"again")]
    # and opened again while its target still answered the old one (D40): the old one ends
    rules.receive(frame(Command.FIN, 1))
    assert rules.receive(frame(Command.SYN, 1)) == [StreamClosed(1), OpenStream(1)]
    assert rules.receive(frame(Command.PSH, 1, b"third")) == [StreamData(1, b"third")]


def test_empty_psh_gives_no_stream_data():
    # an empty StreamData would read as end of stream (decisions.md D21)
    assert server("stream-open").receive(frame(Command.PSH, 1, b"")) == []


def test_psh_for_a_closed_stream_is_dropped():
    # late data of a stream the client opened and one side closed (decisions.md D23)
    rules = server("stream-open")
    rules.receive(frame(Command.SYN, 3))
    rules.receive(frame(Command.SYN, 4))
    rules.close_stream(1)
    rules.receive(frame(Command.FIN, 4))
    # closed, never opened but below an opened id, and after the client's own FIN: dropped
    for sid in (1, 2, 4):
        (effect,) = rules.receive(frame(Command.PSH, sid, b"late"))
        assert isinstance(effect, Note)
    assert rules.state is State.ESTABLISHED and rules.streams == {3, 4}


@pytest.mark.spec("SESS-MAY-REJECT")
@pytest.mark.spec("SESS-REJECT-ALERT")
@pytest.mark.parametrize("opened", [[], [1]], ids=["first-stream", "next-stream"])
def test_data_for_a_stream_never_opened_with_syn_rejects_the_session(opened):
    # ssrlive 0.3.2 clients open streams with their first cmdPSH (decisions.md D31)
    rules = server("established")
    for sid in opened:
        rules.receive(frame(Command.SYN, sid))
        rules.receive(frame(Command.FIN, sid))
    sid = len(opened) + 1
    effects = rules.receive(frame(Command.PSH, sid, b"\x01\x7f\x00\x00\x01\x00\x50"))
    assert sent(effects) == [Frame(Command.ALERT, 0,
                                   f"cmdPSH for stream {sid}, which was never opened with "
                                   "cmdSYN".encode())]
    assert isinstance(effects[-1], CloseSession)
    assert rules.state is State.CLOSED


@pytest.mark.spec("FRAME-NO-DATA")
def test_data_on_syn_is_skipped_and_the_stream_still_opens():
    # decisions.md D3
    effects = server("established").receive(frame(Command.SYN, 3, b"junk"))
    assert isinstance(effects[0], Note) and "4 bytes" in effects[0].text
    assert effects[1:] == [OpenStream(3)]


def test_unknown_command_is_skipped_not_fatal():
    # decisions.md D3
    rules = server("stream-open")
    (note,) = rules.receive(frame(UNKNOWN, 1, b"new feature"))
    assert isinstance(note, Note)
    assert rules.state is State.ESTABLISHED
    assert rules.receive(frame(Command.PSH, 1, b"x")) == [StreamData(1, b"x")]


# ---- server: SYNACK -------------------------------------------------------------------------


@pytest.mark.spec("SESS-SYNACK-AFTER-DIAL")
def test_stream_result_success_sends_empty_synack():
    # decisions.md D12: sent once the outbound dial is up
    rules = server("stream-open")
    assert sent(rules.stream_result(1, None)) == [Frame(Command.SYNACK, 1)]
    assert rules.streams == {1}


@pytest.mark.spec("SESS-SYNACK-AFTER-DIAL")
def test_stream_result_failure_sends_synack_error_then_fin():
    rules = server("stream-open")
    effects = rules.stream_result(1, "connection refused")
    assert sent(effects) == [Frame(Command.SYNACK, 1, b"connection refused"), Frame(Command.FIN, 1)]
    assert rules.streams == set()


@pytest.mark.spec("V2-BOTH-SIDES")
def test_stream_result_failure_for_a_v1_client_is_fin_only():
    rules = server("await-settings")
    rules.receive(settings(version=1))
    rules.receive(frame(Command.SYN, 1))
    assert sent(rules.stream_result(1, "refused")) == [Frame(Command.FIN, 1)]


def test_synack_error_text_is_never_empty_and_at_most_1024_bytes():
    # decisions.md D22: an empty SYNACK would mean success
    assert sent(server("stream-open").stream_result(1, ""))[0].data == b"error"
    assert len(sent(server("stream-open").stream_result(1, "x" * 5000))[0].data) == 1024


def test_stream_result_for_a_closed_stream_sends_nothing():
    rules = server("stream-open")
    rules.close_stream(1)
    assert rules.stream_result(1, None) == []


def test_stream_result_after_the_client_s_fin_is_still_sent():
    # the client finished sending (a request, then FIN) before the dial was done: the answer
    # is still wanted, and cmdSYNACK says whether it will come (D40)
    rules = server("stream-open")
    rules.receive(frame(Command.FIN, 1))
    assert sent(rules.stream_result(1, None)) == [Frame(Command.SYNACK, 1)]


# ---- client ---------------------------------------------------------------------------------


@pytest.mark.spec("SESS-SETTINGS-FIRST")
@pytest.mark.spec("SESS-SETTINGS-CLIENT-NAME")
def test_client_settings_frame_announces_our_version_name_and_md5():
    (out,) = sent([Send(client().settings_frame())])
    assert out.command == Command.SETTINGS and out.stream_id == 0
    assert out.data == f"v=3\nclient=anytls-ref/test\npadding-md5={MD5}".encode()


def test_client_open_stream_sends_syn_and_refuses_an_open_sid():
    rules = client()
    assert rules.open_stream(1) == encode_frame(Command.SYN, 1)
    with pytest.raises(LocalProtocolError):
        rules.open_stream(1)


def test_client_answers_the_server_s_fin_before_anything_else_can_be_sent():
    # decisions.md D40: the FIN answer is the first effect, ahead of the stream's end (after
    # which the session may carry the next stream)
    rules = client("stream-open")
    effects = rules.receive(frame(Command.FIN, 1))
    assert effects == [Send(encode_frame(Command.FIN, 1)), StreamClosed(1)]
    assert rules.streams == set() and rules.close_stream(1) == []


def test_client_half_close_keeps_the_server_s_answer_and_its_fin_ends_the_stream():
    rules = client("stream-open")
    assert sent(rules.finish_stream(1)) == [Frame(Command.FIN, 1)]
    assert rules.finish_stream(1) == []  # once
    assert rules.receive(frame(Command.PSH, 1, b"answer")) == [StreamData(1, b"answer")]
    assert rules.receive(frame(Command.FIN, 1)) == [StreamClosed(1)]  # no FIN back: ours went
    assert rules.streams == set()


def test_client_full_close_after_its_half_close_sends_nothing_more():
    rules = client("sent-fin")
    assert rules.close_stream(1) == [] and rules.streams == set()


def test_client_cannot_open_a_stream_on_a_closed_session():
    with pytest.raises(LocalProtocolError):
        client("closed").open_stream(1)


def test_empty_synack_means_the_stream_is_ready():
    rules = client("stream-open")
    assert rules.receive(frame(Command.SYNACK, 1)) == [StreamReady(1, None)]
    assert rules.streams == {1}


@pytest.mark.spec("SESS-SYNACK-ERROR-CLOSE")
def test_synack_with_text_is_an_error_and_closes_the_stream():
    rules = client("stream-open")
    effects = rules.receive(frame(Command.SYNACK, 1, b"dial tcp: refused"))
    assert effects == [StreamReady(1, "dial tcp: refused", Reason.REFUSED), StreamClosed(1)]
    assert rules.streams == set()
    assert rules.receive(frame(Command.FIN, 1)) == []  # the server's FIN that follows


@pytest.mark.spec("SESS-ALERT-LOG-CLOSE")
def test_alert_closes_the_session_with_its_text():
    rules = client("stream-open")
    assert rules.receive(frame(Command.ALERT, 0, b"go away")) == [
        CloseSession(Reason.PEER_ALERT, "server alert: go away", alert="go away")]
    assert rules.state is State.CLOSED


@pytest.mark.spec("SESS-ALERT-LOG-CLOSE")
def test_empty_alert_still_closes_the_session():
    # decisions.md D13: Go ignores an empty Alert; the spec says both parties close
    rules = client()
    (effect,) = rules.receive(frame(Command.ALERT, 0, b""))
    assert effect == CloseSession(Reason.PEER_ALERT, "server alert: ", alert="")
    assert rules.state is State.CLOSED


@pytest.mark.spec("V2-BOTH-SIDES")
def test_server_settings_turns_on_synack():
    rules = client()
    assert not rules.features.synack
    assert rules.receive(frame(Command.SERVER_SETTINGS, 0, b"v=2")) == [PeerVersion(2)]
    assert rules.features.synack


@pytest.mark.spec("PAD-UPDATE-NEW-SESSIONS")
def test_update_padding_scheme_is_for_new_sessions_only():
    # decisions.md D2: the effect hands the scheme to the Client; this session keeps its own
    rules = client()
    assert rules.receive(frame(Command.UPDATE_PADDING_SCHEME, 0, b"stop=1")) == [
        NewPaddingScheme(b"stop=1")]
    assert rules.padding_md5 == MD5
    assert f"padding-md5={MD5}".encode() in rules.settings_frame()


def test_heart_response_is_reported():
    assert client().receive(frame(Command.HEART_RESPONSE, 4)) == [HeartbeatAnswered(4)]


def test_heart_request_only_to_a_version_2_server():
    # decisions.md D33: active keepalive is a version-2 feature; stream id 0, no data
    rules = client()
    with pytest.raises(LocalProtocolError):
        rules.heart_request()  # no cmdServerSettings yet: version 1
    rules.receive(frame(Command.SERVER_SETTINGS, 0, b"v=1"))
    with pytest.raises(LocalProtocolError):
        rules.heart_request()
    rules.receive(frame(Command.SERVER_SETTINGS, 0, b"v=2"))
    assert rules.heart_request() == encode_frame(Command.HEART_REQUEST, 0)
    rules.closed()
    with pytest.raises(LocalProtocolError):
        rules.heart_request()
