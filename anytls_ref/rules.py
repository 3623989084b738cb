"""anytls_ref.rules — spec "Client › Session" command rules and "Server › Session".

Theory of operation (rule 1, after h11: everything that decides what a received frame means
lives in this file). Each side keeps one small rules object per session. The net layer feeds it
every decoded frame with ``receive(frame)`` and gets back a list of *effects* (effects.py):
frames to send, data or events for a stream, or "close the session". It does no I/O itself.

Server session states:

    AWAIT_SETTINGS --cmdSettings(data)--> ESTABLISHED --(error / Alert / EOF)--> CLOSED
          |
          +--cmdSYN--> send cmdAlert "client did not send its settings" --> CLOSED

Streams live inside ESTABLISHED: cmdSYN opens one (several may overlap: sing-anytls sends SYN 2
before FIN 1; a stream id may be used again after its FIN: ssrlive clients reuse sid 1),
cmdPSH carries its data, cmdFIN says a side is done sending (decisions.md D40): the server
half-closes toward its target and sends its own FIN when the target ends; the client answers a
server's FIN at once, and after its own FIN still receives until the server's. A FIN for an
unknown stream is ignored. Data for a stream that is closed is dropped; data for a stream id
above every one the client opened with cmdSYN rejects the session (decisions.md D31).

The client session is ESTABLISHED from the start (it sends cmdSettings first) and learns the
server's version from cmdServerSettings; until then it runs version-1 rules.

Both sides: cmdWaste is dropped, cmdHeartRequest is answered with cmdHeartResponse on the same
stream id, and an unknown command is skipped (its data too) with a note.

All of this is one table, ``TABLE`` at the end of the file (after h2's state machine): for each
role, each *situation* (the session's state, and for a stream's command whether its stream id is
open) and each command, the handler that runs and the effects it gives, for a frame without data
and with data. ``receive`` is driven by it, and tests/test_rules.py checks every cell.

One exception lives in the net layer, for speed: a cmdPSH with data for an open stream is
handed to that stream without calling ``receive`` (net/session.py, ``Session._fast_psh``). Its
cell in the table is (open stream, PSH) → StreamData, and tests/test_fast_path.py checks that
both paths agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .effects import (CloseSession, Effect, HeartbeatAnswered, NewPaddingScheme, Note, OpenStream,
                      PeerVersion, Send, StreamClosed, StreamData, StreamFinished, StreamReady)
from .errors import LocalProtocolError, Reason
from .frame import Command, Frame, command_name, encode_frame
from .settings import ClientSettings, ServerSettings, decode_alert, encode_alert
from .version import PROTOCOL_VERSION, Features, client_features, server_negotiate

ALERT_NO_SETTINGS = "client did not send its settings"

#: decisions.md D40: after the client's FIN (its application's EOF) the server's answer may
#: still come; the client waits for it while something arrives at least this often.
FIN_LINGER = 5.0


def fin_linger(server_answers_fin: bool | None) -> float:
    """How long the client lingers after its FIN on a session whose server has, or has not
    (False), answered such a FIN before. The Go servers never do (a FIN ends the whole stream
    for them), so once one lingered in vain, later streams on that session close at once."""
    return 0.0 if server_answers_fin is False else FIN_LINGER


class Role(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    AWAIT_SETTINGS = "await-settings"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Situation(enum.Enum):
    """What a received frame meets (the rows of ``TABLE``): the session's state and, for a
    command that concerns one stream, what the session knows of that stream id."""

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


# ---- the one reader of a peer's free text ---------------------------------------------------


def reason_of_peer_text(command: Command, text: str) -> Reason:
    """What a peer's free text means, for the two frames that carry a reason only as text.

    A cmdSYNACK error is the server's dial error: Go servers send Go's error string ("dial tcp
    10.0.0.1:80: connect: connection refused", "i/o timeout", "no such host"), ours the OS's
    ("dial 10.0.0.1:80: Connection refused"). A cmdAlert is any text; one matters to a client:
    ssrlive 0.3.x servers answer a stream id other than 1 with "unsupported sid N"
    (decisions.md D32). Nothing else in the package looks at the words of an error.
    """
    words = text.lower()
    if command == Command.ALERT:
        return Reason.UNSUPPORTED_SID if "unsupported sid" in words else Reason.PEER_ALERT
    if "refused" in words:
        return Reason.REFUSED
    if "network is unreachable" in words:
        return Reason.NETWORK_UNREACHABLE
    if "timed out" in words or "timeout" in words:
        return Reason.TIMED_OUT
    if any(sign in words for sign in ("unreachable", "resolve", "name", "no address",
                                      "no such host", "no route to host")):
        return Reason.HOST_UNREACHABLE
    return Reason.TARGET_FAILED


def _skipped(frame: Frame) -> list[Effect]:
    if frame.skipped:
        # "this type of command should not and cannot carry data": skipped, not fatal (D3)
        return [Note(f"{command_name(frame.command)} sid={frame.stream_id} carried "
                     f"{frame.skipped} bytes of data; skipped")]
    return []


class _Rules:
    """What both roles share. ``receive`` looks the frame up in ``TABLE``."""

    role: Role

    def __init__(self) -> None:
        self.state = State.ESTABLISHED
        self.streams: set[int] = set()  #: open stream ids (either direction still open)
        self.sent_fin: set[int] = set()  #: of those, the ones we sent FIN on (client)
        self.got_fin: set[int] = set()  #: of those, the ones the peer sent FIN on (server)

    def situation(self, frame: Frame) -> Situation:
        """The row of ``TABLE`` this frame meets."""
        if self.state is State.CLOSED:
            return Situation.CLOSED
        if self.state is State.AWAIT_SETTINGS:
            return Situation.AWAIT_SETTINGS
        if frame.command not in STREAM_COMMANDS:
            return Situation.ESTABLISHED
        if frame.stream_id in self.sent_fin:
            return Situation.SENT_FIN
        if frame.stream_id in self.got_fin:
            return Situation.GOT_FIN
        if frame.stream_id in self.streams:
            return Situation.OPEN_STREAM
        return self._not_open(frame.stream_id)

    def _not_open(self, stream_id: int) -> Situation:
        return Situation.OTHER_STREAM

    def receive(self, frame: Frame) -> list[Effect]:
        rule = TABLE.get((self.role, self.situation(frame), frame.command))
        if rule is None:
            if self.state is State.CLOSED:
                return []
            # the spec lists 11 commands; a newer peer may send more. Its data (if any) was
            # skipped by the decoder, so the stream stays in sync (decisions.md D3).
            return [Note(f"unknown command {frame.command} (sid={frame.stream_id}, "
                         f"{frame.skipped} bytes) skipped")]
        return getattr(self, rule.handler)(frame)

    # -- handlers every role uses --

    def _nothing(self, frame: Frame) -> list[Effect]:
        return []

    def _skip(self, frame: Frame) -> list[Effect]:
        """A frame with nothing to act on; only data it must not carry is noted (D3)."""
        return _skipped(frame)

    def _on_waste(self, frame: Frame) -> list[Effect]:
        # [SESS-WASTE-DISCARD] "After receiving cmdWaste, either party should read its data
        # completely and silently discard it."
        return []

    def _on_heart_request(self, frame: Frame) -> list[Effect]:
        # [SESS-HEART-RESPOND] "After receiving cmdHeartRequest, either party should send
        # cmdHeartResponse to the other party." — on the same stream id, as every implementation
        # does.
        return [*_skipped(frame), Send(encode_frame(Command.HEART_RESPONSE, frame.stream_id))]

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
        return [*_skipped(frame), StreamClosed(frame.stream_id)]

    def _ignore(self, frame: Frame) -> list[Effect]:
        return [Note(f"{command_name(frame.command)} is not for this side; ignored"),
                *_skipped(frame)]

    # -- local actions --

    def close_stream(self, stream_id: int) -> list[Effect]:
        """We are done with stream ``stream_id`` both ways: FIN unless the stream is over on the
        wire already (the peer's FIN came, or we sent ours)."""
        fin_due = stream_id in self.streams and stream_id not in self.sent_fin
        self._forget(stream_id)
        if not fin_due or self.state is State.CLOSED:
            return []
        return [Send(encode_frame(Command.FIN, stream_id))]

    def _forget(self, stream_id: int) -> None:
        self.streams.discard(stream_id)
        self.sent_fin.discard(stream_id)
        self.got_fin.discard(stream_id)

    def closed(self) -> None:
        self.state = State.CLOSED
        self.streams.clear()
        self.sent_fin.clear()
        self.got_fin.clear()


class ServerRules(_Rules):
    """The server side of one session."""

    role = Role.SERVER

    def __init__(self, padding_md5: str, padding_raw: bytes, min_version: int = 1) -> None:
        super().__init__()
        self.state = State.AWAIT_SETTINGS
        self.padding_md5 = padding_md5
        self.padding_raw = padding_raw
        self.min_version = min_version
        #: the features of this session, fixed when cmdSettings arrives (version 1 before)
        self.features = Features(1)
        self.client_settings: ClientSettings | None = None
        #: the highest stream id the client opened with cmdSYN (0: none yet)
        self.highest_opened = 0

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

    def _on_second_settings(self, frame: Frame) -> list[Effect]:
        return [Note("second cmdSettings ignored")]  # decisions.md D15

    def _on_syn_before_settings(self, frame: Frame) -> list[Effect]:
        # [SESS-SYN-BEFORE-SETTINGS] "if the server receives cmdSYN before receiving the client's
        # cmdSettings, it must reject this session."
        return self._alert_and_close(ALERT_NO_SETTINGS)

    def _on_syn(self, frame: Frame) -> list[Effect]:
        self.streams.add(frame.stream_id)
        self.highest_opened = max(self.highest_opened, frame.stream_id)
        return [*_skipped(frame), OpenStream(frame.stream_id)]

    def _on_syn_open(self, frame: Frame) -> list[Effect]:
        return [Note(f"SYN for open stream {frame.stream_id} ignored"), *_skipped(frame)]

    def _on_fin_half(self, frame: Frame) -> list[Effect]:
        # "Notifies the other party to close the Stream corresponding to the streamId": the
        # client is done sending. Its target hears EOF, and what the target still sends goes on
        # until the target ends, then our FIN closes the stream (a half-close, decisions.md D40).
        self.got_fin.add(frame.stream_id)
        return [*_skipped(frame), StreamFinished(frame.stream_id)]

    def _on_syn_half_closed(self, frame: Frame) -> list[Effect]:
        # a stream id opened again after the client's FIN while the target still sends (ssrlive
        # reuses sid 1): that answer is no longer wanted; the old stream ends, the new one opens
        self._forget(frame.stream_id)
        return [StreamClosed(frame.stream_id), *self._on_syn(frame)]

    def _on_psh_new(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            return []
        # cmdSYN: "The client notifies the server to open a new Stream." Data above every id the
        # client opened is not late data of a closed stream (that one was opened), so this
        # client opens streams without cmdSYN (ssrlive 0.3.2 does). Dropping the data would
        # leave it waiting for ever; instead, [SESS-MAY-REJECT] "The server has the right to
        # reject client connections that do not correctly implement this protocol", and
        # [SESS-REJECT-ALERT] "it must send cmdAlert to explain the reason, then close the
        # Session." (decisions.md D31)
        return self._alert_and_close(
            f"cmdPSH for stream {frame.stream_id}, which was never opened with cmdSYN")

    def _alert_and_close(self, text: str) -> list[Effect]:
        self.closed()
        return [Send(encode_frame(Command.ALERT, 0, encode_alert(text))),
                CloseSession(Reason.CLIENT_REJECTED, f"rejected: {text}")]

    def stream_result(self, stream_id: int, error: str | None) -> list[Effect]:
        """The outbound connection of ``stream_id`` is up (error None) or failed.

        "If the client reports version v >= 2, after the server receives cmdSYN, it should send
        a cmdSYNACK packet with the corresponding streamId after the proxy outbound connection
        TCP handshake is completed." On failure the data is the error text and FIN follows.
        """
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
        #: the server's version from cmdServerSettings; None until (unless) one arrives
        self.server_version: int | None = None

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
        if self.state is State.CLOSED:
            raise LocalProtocolError("session is closed")
        if stream_id in self.streams:
            raise LocalProtocolError(f"stream {stream_id} is already open")
        self.streams.add(stream_id)
        return encode_frame(Command.SYN, stream_id)

    def heart_request(self) -> bytes:
        """cmdHeartRequest for active keepalive, on stream id 0 (the session's own; every peer
        answers on the id it was asked on). Only to a version ≥ 2 server: "The following
        features should only be enabled when both your server and client support version 2."
        (decisions.md D33)"""
        if self.state is State.CLOSED:
            raise LocalProtocolError("session is closed")
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
        return [CloseSession(reason_of_peer_text(Command.ALERT, text), f"server alert: {text}",
                             alert=text)]

    def _on_synack(self, frame: Frame) -> list[Effect]:
        if not frame.data:
            # "If cmdSYNACK does not carry data, it means the proxy stream handshake was
            # successful."
            return [StreamReady(frame.stream_id)]
        # [SESS-SYNACK-ERROR-CLOSE] "If it carries data, the data represents error information.
        # After the client receives the error information, it must close the corresponding stream."
        self.streams.discard(frame.stream_id)
        text = decode_alert(frame.data)
        return [StreamReady(frame.stream_id, text, reason_of_peer_text(Command.SYNACK, text)),
                StreamClosed(frame.stream_id)]

    def _on_fin_answered(self, frame: Frame) -> list[Effect]:
        # The server is done sending, and so is this stream: Go servers have forgotten it already
        # (they ignore our FIN), ssrlive 0.5 releases it only once both sides sent FIN. The FIN
        # goes out before the session can carry the next stream (decisions.md D40).
        self._forget(frame.stream_id)
        return [*_skipped(frame), Send(encode_frame(Command.FIN, frame.stream_id)),
                StreamClosed(frame.stream_id)]

    def finish_stream(self, stream_id: int) -> list[Effect]:
        """Our side of ``stream_id`` is done sending (the application's EOF): FIN, and the
        server's data still comes until its FIN (a half-close, decisions.md D40)."""
        if stream_id not in self.streams or stream_id in self.sent_fin:
            return []
        self.sent_fin.add(stream_id)
        return [Send(encode_frame(Command.FIN, stream_id))]

    def _on_synack_other(self, frame: Frame) -> list[Effect]:
        return [Note(f"SYNACK for unknown stream {frame.stream_id} ignored")]

    def _on_heart_response(self, frame: Frame) -> list[Effect]:
        return [*_skipped(frame), HeartbeatAnswered(frame.stream_id)]


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


#: The server's session-wide commands (in AWAIT_SETTINGS too, but for cmdSettings itself).
_SERVER_SESSION = {
    Command.WASTE: Rule("_on_waste", "", ""),
    Command.SETTINGS: Rule("_on_second_settings", "Note", "Note"),
    Command.HEART_REQUEST: Rule("_on_heart_request", "Send:HEART_RESPONSE",
                                "Note Send:HEART_RESPONSE"),
    # commands only a client should receive (decisions.md D20; Go ignores them too)
    Command.ALERT: Rule("_ignore", "Note", "Note"),
    Command.UPDATE_PADDING_SCHEME: Rule("_ignore", "Note", "Note"),
    Command.SERVER_SETTINGS: Rule("_ignore", "Note", "Note"),
    Command.HEART_RESPONSE: Rule("_ignore", "Note", "Note Note"),
}
_SERVER_SYNACK = Rule("_ignore", "Note", "Note")  # the client's command: ignored anywhere

_CLIENT_SESSION = {
    Command.WASTE: Rule("_on_waste", "", ""),
    Command.ALERT: Rule("_on_alert", "CloseSession", "CloseSession"),
    Command.UPDATE_PADDING_SCHEME: Rule("_on_update_padding", "NewPaddingScheme",
                                        "NewPaddingScheme"),
    Command.HEART_REQUEST: Rule("_on_heart_request", "Send:HEART_RESPONSE",
                                "Note Send:HEART_RESPONSE"),
    Command.HEART_RESPONSE: Rule("_on_heart_response", "HeartbeatAnswered",
                                 "Note HeartbeatAnswered"),
    Command.SERVER_SETTINGS: Rule("_on_server_settings", "PeerVersion", "PeerVersion"),
    # commands only a server should receive (decisions.md D20)
    Command.SETTINGS: Rule("_ignore", "Note", "Note"),
}
_CLIENT_SYN = Rule("_ignore", "Note", "Note Note")  # the server's command: ignored anywhere

_REJECT = "Send:ALERT CloseSession"

#: (role, situation, command) → Rule. A command not in the table is unknown: skipped with a
#: Note (nothing once closed).
TABLE: dict[tuple[Role, Situation, int], Rule] = {
    # -- server, before cmdSettings
    **{(Role.SERVER, Situation.AWAIT_SETTINGS, c): r for c, r in _SERVER_SESSION.items()},
    (Role.SERVER, Situation.AWAIT_SETTINGS, Command.SETTINGS):
        Rule("_on_settings", "Note", "Send:SERVER_SETTINGS"),  # empty: ignored (D8)
    (Role.SERVER, Situation.AWAIT_SETTINGS, Command.SYN):
        Rule("_on_syn_before_settings", _REJECT, _REJECT),
    (Role.SERVER, Situation.AWAIT_SETTINGS, Command.PSH): Rule("_on_psh_new", "", _REJECT),
    (Role.SERVER, Situation.AWAIT_SETTINGS, Command.FIN): Rule("_skip", "", "Note"),
    (Role.SERVER, Situation.AWAIT_SETTINGS, Command.SYNACK): _SERVER_SYNACK,
    # -- server, established
    **{(Role.SERVER, Situation.ESTABLISHED, c): r for c, r in _SERVER_SESSION.items()},
    (Role.SERVER, Situation.NEW_STREAM, Command.SYN): Rule("_on_syn", "OpenStream",
                                                           "Note OpenStream"),
    (Role.SERVER, Situation.NEW_STREAM, Command.PSH): Rule("_on_psh_new", "", _REJECT),  # D31
    (Role.SERVER, Situation.NEW_STREAM, Command.FIN): Rule("_skip", "", "Note"),
    (Role.SERVER, Situation.NEW_STREAM, Command.SYNACK): _SERVER_SYNACK,
    (Role.SERVER, Situation.OPEN_STREAM, Command.SYN): Rule("_on_syn_open", "Note", "Note Note"),
    (Role.SERVER, Situation.OPEN_STREAM, Command.PSH): Rule("_on_psh", "", "StreamData"),
    (Role.SERVER, Situation.OPEN_STREAM, Command.FIN): Rule("_on_fin_half", "StreamFinished",
                                                            "Note StreamFinished"),
    (Role.SERVER, Situation.OPEN_STREAM, Command.SYNACK): _SERVER_SYNACK,
    # the client sent FIN; its target's answer still goes (D40)
    (Role.SERVER, Situation.GOT_FIN, Command.SYN): Rule("_on_syn_half_closed",
                                                        "StreamClosed OpenStream",
                                                        "StreamClosed Note OpenStream"),
    (Role.SERVER, Situation.GOT_FIN, Command.PSH): Rule("_on_psh_other", "", "Note"),
    (Role.SERVER, Situation.GOT_FIN, Command.FIN): Rule("_skip", "", "Note"),
    (Role.SERVER, Situation.GOT_FIN, Command.SYNACK): _SERVER_SYNACK,
    # a stream id opened before and closed since: SYN opens it again (ssrlive reuses sid 1),
    # late data and FIN are dropped (D11, D23)
    (Role.SERVER, Situation.OTHER_STREAM, Command.SYN): Rule("_on_syn", "OpenStream",
                                                             "Note OpenStream"),
    (Role.SERVER, Situation.OTHER_STREAM, Command.PSH): Rule("_on_psh_other", "", "Note"),
    (Role.SERVER, Situation.OTHER_STREAM, Command.FIN): Rule("_skip", "", "Note"),
    (Role.SERVER, Situation.OTHER_STREAM, Command.SYNACK): _SERVER_SYNACK,
    # -- client (established from the start)
    **{(Role.CLIENT, Situation.ESTABLISHED, c): r for c, r in _CLIENT_SESSION.items()},
    (Role.CLIENT, Situation.OPEN_STREAM, Command.SYN): _CLIENT_SYN,
    (Role.CLIENT, Situation.OPEN_STREAM, Command.PSH): Rule("_on_psh", "", "StreamData"),
    (Role.CLIENT, Situation.OPEN_STREAM, Command.FIN): Rule("_on_fin_answered",
                                                            "Send:FIN StreamClosed",
                                                            "Note Send:FIN StreamClosed"),
    (Role.CLIENT, Situation.OPEN_STREAM, Command.SYNACK): Rule("_on_synack", "StreamReady",
                                                               "StreamReady StreamClosed"),
    # we sent FIN (the application's EOF); the server's answer still comes, its FIN ends it (D40)
    (Role.CLIENT, Situation.SENT_FIN, Command.SYN): _CLIENT_SYN,
    (Role.CLIENT, Situation.SENT_FIN, Command.PSH): Rule("_on_psh", "", "StreamData"),
    (Role.CLIENT, Situation.SENT_FIN, Command.FIN): Rule("_on_fin", "StreamClosed",
                                                         "Note StreamClosed"),
    (Role.CLIENT, Situation.SENT_FIN, Command.SYNACK): Rule("_on_synack", "StreamReady",
                                                            "StreamReady StreamClosed"),
    (Role.CLIENT, Situation.OTHER_STREAM, Command.SYN): _CLIENT_SYN,
    (Role.CLIENT, Situation.OTHER_STREAM, Command.PSH): Rule("_on_psh_other", "", "Note"),
    (Role.CLIENT, Situation.OTHER_STREAM, Command.FIN): Rule("_skip", "", "Note"),
    (Role.CLIENT, Situation.OTHER_STREAM, Command.SYNACK): Rule("_on_synack_other", "Note",
                                                                "Note"),
    # -- either role, closed: nothing more happens
    **{(role, Situation.CLOSED, c): Rule("_nothing", "", "")
       for role in Role for c in Command},
}
