"""anytls_ref.rules — spec "Client › Session" command rules and "Server › Session".

Theory of operation (rule 1, after h11: everything that decides what a received frame means
lives in this file). Each side keeps one rules object per session; the net layer feeds it every
decoded frame (``receive``) and carries out the *effects* it answers with (effects.py).

    server: AWAIT_SETTINGS --cmdSettings--> ESTABLISHED --(error / Alert / EOF)--> CLOSED
            AWAIT_SETTINGS --cmdSYN--> cmdAlert "client did not send its settings" --> CLOSED
    client: ESTABLISHED from the start; version-1 rules until cmdServerSettings comes

Streams live inside ESTABLISHED: cmdSYN opens one (they may overlap, and an id may be used again
after its FIN), cmdPSH carries data, cmdFIN says a side is done sending (decisions.md D40).
All of it is one table, ``TABLE`` at the end (after h2's state machine): per role, situation and
command, the handler and the effects it gives without and with data; tests/test_rules.py checks
every cell. One exception lives in the net layer, for speed: a cmdPSH for an open stream goes
straight to its stream (net/session.py ``Session._fast_psh``), as the table's (open stream, PSH)
cell says; tests/test_fast_path.py checks that they agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .effects import (CloseSession, Effect, HeartbeatAnswered, NewPaddingScheme, Note, OpenStream,
                      PeerVersion, Send, StreamClosed, StreamData, StreamFinished, StreamReady)
from .errors import LocalProtocolError, Reason, reason_of_peer_text
from .frame import Command, Frame, command_name, encode_frame
from .settings import ClientSettings, ServerSettings, decode_alert, encode_alert
from .version import PROTOCOL_VERSION, Features, client_features, server_negotiate

ALERT_NO_SETTINGS = "client did not send its settings"

class Role(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    AWAIT_SETTINGS = "await-settings"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Situation(enum.Enum):
    """What a received frame meets (a row of ``TABLE``): the state, or what is known of its sid."""

    AWAIT_SETTINGS = "await-settings"  #: server, before cmdSettings
    ESTABLISHED = "established"  #: a command that concerns the whole session
    OPEN_STREAM = "open sid"  #: a stream's command; its stream is open both ways
    SENT_FIN = "sid after our FIN"  #: client: we sent FIN; the server's data still comes
    GOT_FIN = "sid after its FIN"  #: server: the client sent FIN; the target's data still goes
    NEW_STREAM = "new sid"  #: server: a stream's command above every id the client opened
    OTHER_STREAM = "other sid"  #: a stream's command; not open (server: opened once, closed)
    CLOSED = "closed"


#: The commands that concern one stream; the others concern the whole session.
STREAM_COMMANDS = frozenset({Command.SYN, Command.PSH, Command.FIN, Command.SYNACK})


class _Rules:
    """What both roles share. ``receive`` looks the frame up in ``TABLE``."""

    role: Role

    def __init__(self) -> None:
        self.state = State.ESTABLISHED
        self.streams: set[int] = set()  #: open stream ids (either direction still open)
        #: of those, the half-closed ones: SENT_FIN (client) or GOT_FIN (server), D40
        self.half_closed: dict[int, Situation] = {}

    def situation(self, frame: Frame) -> Situation:
        """The row of ``TABLE`` this frame meets."""
        if self.state is State.CLOSED:
            return Situation.CLOSED
        if self.state is State.AWAIT_SETTINGS:
            return Situation.AWAIT_SETTINGS
        if frame.command not in STREAM_COMMANDS:
            return Situation.ESTABLISHED
        if frame.stream_id in self.streams:
            return self.half_closed.get(frame.stream_id, Situation.OPEN_STREAM)
        return self._not_open(frame.stream_id)

    def _not_open(self, stream_id: int) -> Situation:
        return Situation.OTHER_STREAM

    def receive(self, frame: Frame) -> list[Effect]:
        rule = TABLE.get((self.role, self.situation(frame), frame.command))
        if rule is None:
            if self.state is State.CLOSED:
                return []
            # a newer peer may send more than the 11 commands; the decoder skipped its data (D3)
            return [Note(f"unknown command {frame.command} (sid={frame.stream_id}, "
                         f"{frame.skipped} bytes) skipped")]
        return getattr(self, rule.handler)(frame)

    # -- handlers every role uses --

    def _nothing(self, frame: Frame) -> list[Effect]:
        return []

    def _skip(self, frame: Frame) -> list[Effect]:
        """Nothing to act on; data the command must not carry is noted: "this type of command
        should not and cannot carry data" (skipped by the decoder, not fatal: D3)."""
        if frame.skipped:
            return [Note(f"{command_name(frame.command)} sid={frame.stream_id} carried "
                         f"{frame.skipped} bytes of data; skipped")]
        return []

    def _on_waste(self, frame: Frame) -> list[Effect]:
        # [SESS-WASTE-DISCARD] "After receiving cmdWaste, either party should read its data
        # completely and silently discard it."
        return []

    def _on_heart_request(self, frame: Frame) -> list[Effect]:
        # [SESS-HEART-RESPOND] "After receiving cmdHeartRequest, either party should send
        # cmdHeartResponse to the other party." (on its stream id, as every implementation does)
        return [*self._skip(frame), Send(encode_frame(Command.HEART_RESPONSE, frame.stream_id))]

    def _on_psh(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            # an empty cmdPSH carries nothing; an empty StreamData would read as EOF (D21)
            return []
        return [StreamData(frame.stream_id, frame.data)]

    def _on_psh_other(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            return []
        return [Note(f"PSH for unknown stream {frame.stream_id} ({len(frame.data)} bytes) dropped")]

    def _on_fin(self, frame: Frame) -> list[Effect]:
        # "Notifies the other party to close the Stream corresponding to the streamId." After our
        # own FIN this ends the stream (decisions.md D40).
        self._forget(frame.stream_id)
        return [*self._skip(frame), StreamClosed(frame.stream_id)]

    def _ignore(self, frame: Frame) -> list[Effect]:
        """A command the table says to ignore here: only for the other side (D20), a second
        cmdSettings (D15), a SYN for an open stream or a SYNACK for an unknown one (D23)."""
        return [Note(f"{command_name(frame.command)} sid={frame.stream_id} ignored "
                     f"({self.situation(frame).value})"), *self._skip(frame)]

    # -- local actions --

    def close_stream(self, stream_id: int) -> list[Effect]:
        """We are done with stream ``stream_id`` both ways: FIN unless the stream is over on the
        wire already (the peer's FIN came, or we sent ours)."""
        fin_due = (stream_id in self.streams
                   and self.half_closed.get(stream_id) is not Situation.SENT_FIN)
        self._forget(stream_id)
        if not fin_due or self.state is State.CLOSED:
            return []
        return [Send(encode_frame(Command.FIN, stream_id))]

    def _forget(self, stream_id: int) -> None:
        self.streams.discard(stream_id)
        self.half_closed.pop(stream_id, None)

    def _check_open(self) -> None:
        if self.state is State.CLOSED:
            raise LocalProtocolError("session is closed")

    def closed(self) -> None:
        self.state = State.CLOSED
        self.streams.clear()
        self.half_closed.clear()


class ServerRules(_Rules):
    """The server side of one session."""

    role = Role.SERVER

    def __init__(self, padding_md5: str, padding_raw: bytes, min_version: int = 1) -> None:
        super().__init__()
        self.state = State.AWAIT_SETTINGS
        self.padding_md5 = padding_md5
        self.padding_raw = padding_raw
        self.min_version = min_version
        self.features = Features(1)  #: fixed when cmdSettings arrives (version 1 before)
        self.client_settings: ClientSettings | None = None
        self.highest_opened = 0  #: the highest stream id the client opened with cmdSYN

    def _not_open(self, stream_id: int) -> Situation:
        return Situation.NEW_STREAM if stream_id > self.highest_opened else Situation.OTHER_STREAM

    def _on_settings(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            # Go ignores an empty cmdSettings; a later SYN is then rejected (decisions.md D8)
            return [Note("empty cmdSettings ignored")]
        settings = ClientSettings.decode(frame.data)
        self.client_settings = settings
        effects: list[Effect] = []
        # [PAD-UPDATE-SEND] "When the server receives a padding-md5 from the client that is
        # different from the server, it will send cmdUpdatePaddingScheme" — before
        # cmdServerSettings, as Go does.
        if settings.padding_md5 != self.padding_md5:
            effects.append(Send(encode_frame(Command.UPDATE_PADDING_SCHEME, 0, self.padding_raw)))
        decision = server_negotiate(settings.version, self.min_version)
        if decision.reject is not None:
            # [SESS-REJECT-ALERT] "When the server rejects such clients, it must send cmdAlert to
            # explain the reason, then close the Session."
            return [*effects, *self._alert_and_close(decision.reject)]
        self.features = decision.features
        self.state = State.ESTABLISHED
        if decision.reply_version is not None:  # [SESS-SERVER-SETTINGS] right after Settings
            effects.append(Send(encode_frame(
                Command.SERVER_SETTINGS, 0, ServerSettings(decision.reply_version).encode())))
        return effects

    def _on_syn_before_settings(self, frame: Frame) -> list[Effect]:
        # [SESS-SYN-BEFORE-SETTINGS] "if the server receives cmdSYN before receiving the client's
        # cmdSettings, it must reject this session."
        return self._alert_and_close(ALERT_NO_SETTINGS)

    def _on_syn(self, frame: Frame) -> list[Effect]:
        self.streams.add(frame.stream_id)
        self.highest_opened = max(self.highest_opened, frame.stream_id)
        return [*self._skip(frame), OpenStream(frame.stream_id)]

    def _on_fin_half(self, frame: Frame) -> list[Effect]:
        # the client is done sending: its target hears EOF, what it still sends goes on, and
        # our FIN follows when it ends (a half-close, decisions.md D40)
        self.half_closed[frame.stream_id] = Situation.GOT_FIN
        return [*self._skip(frame), StreamFinished(frame.stream_id)]

    def _on_syn_half_closed(self, frame: Frame) -> list[Effect]:
        # opened again while the old target still answers (ssrlive reuses sid 1): the old ends
        self._forget(frame.stream_id)
        return [StreamClosed(frame.stream_id), *self._on_syn(frame)]

    def _on_psh_new(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            return []
        # data above every id opened: a client that opens streams without cmdSYN (ssrlive
        # 0.3.2), left waiting for ever if dropped. [SESS-MAY-REJECT] "The server has the right
        # to reject client connections that do not correctly implement this protocol", and
        # [SESS-REJECT-ALERT] "it must send cmdAlert to explain the reason, then close the
        # Session." (decisions.md D31)
        return self._alert_and_close(
            f"cmdPSH for stream {frame.stream_id}, which was never opened with cmdSYN")

    def _alert_and_close(self, text: str) -> list[Effect]:
        self.closed()
        return [Send(encode_frame(Command.ALERT, 0, encode_alert(text))),
                CloseSession(Reason.CLIENT_REJECTED, f"rejected: {text}")]

    def stream_result(self, stream_id: int, error: str | None) -> list[Effect]:
        """The outbound connection of ``stream_id`` is up (error None) or failed: cmdSYNACK
        (empty, or the error text; FIN follows an error)."""
        if stream_id not in self.streams or self.state is State.CLOSED:
            return []
        effects: list[Effect] = []
        if self.features.synack:  # [V2-BOTH-SIDES] a version-1 client gets no SYNACK
            # [SESS-SYNACK-AFTER-DIAL] called once the dial is done; an empty SYNACK means success,
            # so an error always carries some text
            data = b"" if error is None else (error.encode("utf-8")[:1024] or b"error")
            effects.append(Send(encode_frame(Command.SYNACK, stream_id, data)))
        if error is not None:
            effects.extend(self.close_stream(stream_id))
        return effects


class ClientRules(_Rules):
    """The client side of one session."""

    role = Role.CLIENT

    def __init__(self, client_name: str | None, padding_md5: str) -> None:
        super().__init__()
        self.client_name = client_name
        self.padding_md5 = padding_md5
        self.server_version: int | None = None  #: from cmdServerSettings, if one came

    @property
    def features(self) -> Features:
        return client_features(self.server_version)

    def settings_frame(self) -> bytes:
        """cmdSettings: "The client must immediately send cmdSettings when starting a new
        session." """
        settings = ClientSettings(PROTOCOL_VERSION, self.client_name, self.padding_md5)
        return encode_frame(Command.SETTINGS, 0, settings.encode())

    def open_stream(self, stream_id: int) -> bytes:
        """cmdSYN for a new stream. "The client should generate a monotonically increasing
        streamId within the Session for each Stream." (the caller picks the id)"""
        self._check_open()
        if stream_id in self.streams:
            raise LocalProtocolError(f"stream {stream_id} is already open")
        self.streams.add(stream_id)
        return encode_frame(Command.SYN, stream_id)

    def heart_request(self) -> bytes:
        """cmdHeartRequest on stream id 0 (every peer answers on the id asked on), only to a
        version ≥ 2 server (V2-BOTH-SIDES; active keepalive, decisions.md D33)."""
        self._check_open()
        if not self.features.heartbeat:
            raise LocalProtocolError("the server does not speak version 2: no heartbeats")
        return encode_frame(Command.HEART_REQUEST, 0)

    def _on_server_settings(self, frame: Frame) -> list[Effect]:
        self.server_version = ServerSettings.decode(frame.data).version
        return [PeerVersion(self.server_version)]

    def _on_update_padding(self, frame: Frame) -> list[Effect]:
        # [PAD-UPDATE-NEW-SESSIONS] "If cmdUpdatePaddingScheme is received, subsequent new
        # sessions must use the paddingScheme issued by the server" — this session keeps its own
        # (decisions.md D2).
        return [NewPaddingScheme(frame.data)]

    def _on_alert(self, frame: Frame) -> list[Effect]:
        # [SESS-ALERT-LOG-CLOSE] "The client needs to read it and print it to the log, then both
        # parties close the session."
        text = decode_alert(frame.data)
        self.closed()
        return [CloseSession(reason_of_peer_text(text, alert=True), f"server alert: {text}",
                             alert=text)]

    def _on_synack(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            # "If cmdSYNACK does not carry data, it means the proxy stream handshake was
            # successful."
            return [StreamReady(frame.stream_id)]
        # [SESS-SYNACK-ERROR-CLOSE] "If it carries data, the data represents error information.
        # After the client receives the error information, it must close the corresponding stream."
        self._forget(frame.stream_id)
        text = decode_alert(frame.data)
        return [StreamReady(frame.stream_id, text, reason_of_peer_text(text)),
                StreamClosed(frame.stream_id)]

    def _on_fin_answered(self, frame: Frame) -> list[Effect]:
        # the stream is over: our FIN answers, before the session can carry the next stream (Go
        # servers ignore it, ssrlive 0.5 frees a stream only after both FINs; D40)
        self._forget(frame.stream_id)
        return [*self._skip(frame), Send(encode_frame(Command.FIN, frame.stream_id)),
                StreamClosed(frame.stream_id)]

    def finish_stream(self, stream_id: int) -> list[Effect]:
        """Our side of ``stream_id`` is done sending (the application's EOF): FIN, and the
        server's data still comes until its FIN (a half-close, decisions.md D40)."""
        if stream_id not in self.streams or stream_id in self.half_closed:
            return []
        self.half_closed[stream_id] = Situation.SENT_FIN
        return [Send(encode_frame(Command.FIN, stream_id))]

    def _on_heart_response(self, frame: Frame) -> list[Effect]:
        return [*self._skip(frame), HeartbeatAnswered(frame.stream_id)]


# ---- the table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One cell of the table: the handler that runs (a method of the role's rules class, by
    name, so a subclass can replace it), and the effects it gives for a frame without data and
    for one with data (Effect class names; ``Send:X`` is a frame of command X sent back). The
    effects are documentation that tests/test_rules.py holds the code to."""

    handler: str
    empty: str
    data: str


def _row(role: Role, situation: Situation, cells: dict[int, Rule]) -> dict:
    return {(role, situation, command): rule for command, rule in cells.items()}


_IGNORED = Rule("_ignore", "Note", "Note")  # not for this side (D20), or not here (D15, D23)
_IGNORED_NO_DATA = Rule("_ignore", "Note", "Note Note")  # ... and it must carry no data
_SKIPPED = Rule("_skip", "", "Note")  # nothing to act on (data it must not carry is noted, D3)
_REJECT = "Send:ALERT CloseSession"

_WASTE = Rule("_on_waste", "", "")
_HEART = Rule("_on_heart_request", "Send:HEART_RESPONSE", "Note Send:HEART_RESPONSE")
#: The server's commands that concern the whole session (before cmdSettings too, but that one).
_SERVER_SESSION = {
    Command.WASTE: _WASTE, Command.HEART_REQUEST: _HEART,
    Command.SETTINGS: Rule("_ignore", "Note", "Note"),  # a second one (D15)
    Command.ALERT: _IGNORED, Command.UPDATE_PADDING_SCHEME: _IGNORED,
    Command.SERVER_SETTINGS: _IGNORED, Command.HEART_RESPONSE: _IGNORED_NO_DATA,
}
_CLIENT_SESSION = {
    Command.WASTE: _WASTE, Command.HEART_REQUEST: _HEART,
    Command.ALERT: Rule("_on_alert", "CloseSession", "CloseSession"),
    Command.UPDATE_PADDING_SCHEME: Rule("_on_update_padding", "NewPaddingScheme",
                                        "NewPaddingScheme"),
    Command.HEART_RESPONSE: Rule("_on_heart_response", "HeartbeatAnswered",
                                 "Note HeartbeatAnswered"),
    Command.SERVER_SETTINGS: Rule("_on_server_settings", "PeerVersion", "PeerVersion"),
    Command.SETTINGS: _IGNORED,
}
_SYNACK_STREAM = Rule("_on_synack", "StreamReady", "StreamReady StreamClosed")

#: (role, situation, command) → Rule. A command not in the table is unknown: skipped with a
#: Note (nothing once closed).
TABLE: dict[tuple[Role, Situation, int], Rule] = {
    **_row(Role.SERVER, Situation.AWAIT_SETTINGS, {
        **_SERVER_SESSION,
        Command.SETTINGS: Rule("_on_settings", "Note", "Send:SERVER_SETTINGS"),  # empty: D8
        Command.SYN: Rule("_on_syn_before_settings", _REJECT, _REJECT),
        Command.PSH: Rule("_on_psh_new", "", _REJECT),  # data with no SYN (D31)
        Command.FIN: _SKIPPED, Command.SYNACK: _IGNORED}),
    **_row(Role.SERVER, Situation.ESTABLISHED, _SERVER_SESSION),
    **_row(Role.SERVER, Situation.NEW_STREAM, {
        Command.SYN: Rule("_on_syn", "OpenStream", "Note OpenStream"),
        Command.PSH: Rule("_on_psh_new", "", _REJECT),  # D31
        Command.FIN: _SKIPPED, Command.SYNACK: _IGNORED}),
    **_row(Role.SERVER, Situation.OPEN_STREAM, {
        Command.SYN: _IGNORED_NO_DATA,
        Command.PSH: Rule("_on_psh", "", "StreamData"),
        Command.FIN: Rule("_on_fin_half", "StreamFinished", "Note StreamFinished"),  # D40
        Command.SYNACK: _IGNORED}),
    # the client sent FIN; its target's answer still goes (D40)
    **_row(Role.SERVER, Situation.GOT_FIN, {
        Command.SYN: Rule("_on_syn_half_closed", "StreamClosed OpenStream",
                          "StreamClosed Note OpenStream"),
        Command.PSH: Rule("_on_psh_other", "", "Note"),
        Command.FIN: _SKIPPED, Command.SYNACK: _IGNORED}),
    # opened and closed since: SYN opens it again (ssrlive reuses sid 1); late data dropped (D23)
    **_row(Role.SERVER, Situation.OTHER_STREAM, {
        Command.SYN: Rule("_on_syn", "OpenStream", "Note OpenStream"),
        Command.PSH: Rule("_on_psh_other", "", "Note"),
        Command.FIN: _SKIPPED, Command.SYNACK: _IGNORED}),
    # the client is established from the start
    **_row(Role.CLIENT, Situation.ESTABLISHED, _CLIENT_SESSION),
    **_row(Role.CLIENT, Situation.OPEN_STREAM, {
        Command.SYN: _IGNORED_NO_DATA,
        Command.PSH: Rule("_on_psh", "", "StreamData"),
        Command.FIN: Rule("_on_fin_answered", "Send:FIN StreamClosed",
                          "Note Send:FIN StreamClosed"),  # D40
        Command.SYNACK: _SYNACK_STREAM}),
    # we sent FIN (the application's EOF): the answer still comes, the server's FIN ends it
    **_row(Role.CLIENT, Situation.SENT_FIN, {
        Command.SYN: _IGNORED_NO_DATA,
        Command.PSH: Rule("_on_psh", "", "StreamData"),
        Command.FIN: Rule("_on_fin", "StreamClosed", "Note StreamClosed"),
        Command.SYNACK: _SYNACK_STREAM}),
    **_row(Role.CLIENT, Situation.OTHER_STREAM, {
        Command.SYN: _IGNORED_NO_DATA,
        Command.PSH: Rule("_on_psh_other", "", "Note"),
        Command.FIN: _SKIPPED,
        Command.SYNACK: _IGNORED}),
    # either role, closed: nothing more happens
    **_row(Role.SERVER, Situation.CLOSED, {c: Rule("_nothing", "", "") for c in Command}),
    **_row(Role.CLIENT, Situation.CLOSED, {c: Rule("_nothing", "", "") for c in Command}),
}
