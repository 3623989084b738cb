"""anytls_ref.session — spec "Client › Session" command rules and "Server › Session".

Theory of operation (rule 1, after h11: everything that decides what a received frame means
lives in this file). Each side keeps one small rules object per session. The net layer feeds it
every decoded frame with ``receive(frame)`` and gets back a list of *effects*: frames to send,
data or events for a stream, or "close the session". It does no I/O itself.

Server session states:

    AWAIT_SETTINGS --cmdSettings(data)--> ESTABLISHED --(error / Alert / EOF)--> CLOSED
          |
          +--cmdSYN--> send cmdAlert "client did not send its settings" --> CLOSED

Streams live inside ESTABLISHED: cmdSYN opens one (several may overlap: sing-anytls sends SYN 2
before FIN 1; a stream id may be used again after its FIN: ssrlive clients reuse sid 1),
cmdPSH carries its data, cmdFIN closes it. A FIN for an unknown stream is ignored, and FIN is
never echoed (peers.md §2). Data for a stream that is closed is dropped; data for a stream id
above every one the client opened with cmdSYN rejects the session (decisions.md D31).

The client session is ESTABLISHED from the start (it sends cmdSettings first) and learns the
server's version from cmdServerSettings; until then it runs version-1 rules.

Both sides: cmdWaste is dropped, cmdHeartRequest is answered with cmdHeartResponse on the same
stream id, and an unknown command is skipped (its data too) with a note.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from .errors import LocalProtocolError
from .frame import Command, Frame, command_name, encode_frame
from .settings import ClientSettings, ServerSettings, decode_alert, encode_alert
from .version import PROTOCOL_VERSION, Features, client_features, server_negotiate

ALERT_NO_SETTINGS = "client did not send its settings"


class State(enum.Enum):
    AWAIT_SETTINGS = "await-settings"
    ESTABLISHED = "established"
    CLOSED = "closed"


# ---- effects: what the net layer must do after a frame -------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write this frame to the peer."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Server: the client opened stream ``stream_id``; start serving it."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamData:
    """Data for stream ``stream_id``."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The peer closed stream ``stream_id`` (cmdFIN): close it locally, send no FIN back."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReady:
    """Client: cmdSYNACK for ``stream_id``; ``error`` is None on success."""

    stream_id: int
    error: str | None


@dataclass(frozen=True, slots=True)
class NewPaddingScheme:
    """Client: the server asked for this padding scheme (raw bytes) on new sessions."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class PeerVersion:
    """Client: cmdServerSettings told the server's version."""

    version: int


@dataclass(frozen=True, slots=True)
class HeartbeatAnswered:
    """Client: a cmdHeartResponse arrived."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class CloseSession:
    """Close the whole session (after sending any Send effect before this one)."""

    reason: str
    #: the peer's cmdAlert text when the close is because of one
    alert: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Nothing to do, but worth one debug log line (skipped data, unknown command, ...)."""

    text: str


Effect = (
    Send | OpenStream | StreamData | StreamClosed | StreamReady | NewPaddingScheme | PeerVersion
    | HeartbeatAnswered | CloseSession | Note
)


def _skipped(frame: Frame) -> list[Effect]:
    if frame.skipped:
        # "this type of command should not and cannot carry data": skipped, not fatal (D3)
        return [Note(f"{command_name(frame.command)} sid={frame.stream_id} carried "
                     f"{frame.skipped} bytes of data; skipped")]
    return []


class _Rules:
    """What both roles share."""

    def __init__(self) -> None:
        self.state = State.ESTABLISHED
        self.streams: set[int] = set()  #: open stream ids
        self._handlers: dict[int, Callable[[Frame], list[Effect]]] = {}

    def receive(self, frame: Frame) -> list[Effect]:
        if self.state is State.CLOSED:
            return []
        handler = self._handlers.get(frame.command)
        if handler is None:
            # the spec lists 11 commands; a newer peer may send more. Its data (if any) was
            # skipped by the decoder, so the stream stays in sync (decisions.md D3).
            return [Note(f"unknown command {frame.command} (sid={frame.stream_id}, "
                         f"{frame.skipped} bytes) skipped")]
        return handler(frame)

    # -- handlers every role uses --

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
        if frame.stream_id in self.streams:
            return [StreamData(frame.stream_id, frame.data)]
        return [Note(f"PSH for unknown stream {frame.stream_id} ({len(frame.data)} bytes) dropped")]

    def _on_fin(self, frame: Frame) -> list[Effect]:
        if frame.stream_id in self.streams:
            # "Notifies the other party to close the Stream corresponding to the streamId."
            self.streams.discard(frame.stream_id)
            return [*_skipped(frame), StreamClosed(frame.stream_id)]
        return _skipped(frame)

    def _ignore(self, frame: Frame) -> list[Effect]:
        return [Note(f"{command_name(frame.command)} is not for this side; ignored"),
                *_skipped(frame)]

    # -- local actions --

    def close_stream(self, stream_id: int) -> list[Effect]:
        """We end stream ``stream_id``: send FIN unless the peer already closed it."""
        if stream_id not in self.streams or self.state is State.CLOSED:
            return []
        self.streams.discard(stream_id)
        return [Send(encode_frame(Command.FIN, stream_id))]

    def closed(self) -> None:
        self.state = State.CLOSED
        self.streams.clear()


class ServerRules(_Rules):
    """The server side of one session."""

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
        self._handlers = {
            Command.WASTE: self._on_waste,
            Command.SYN: self._on_syn,
            Command.PSH: self._on_psh,
            Command.FIN: self._on_fin,
            Command.SETTINGS: self._on_settings,
            Command.HEART_REQUEST: self._on_heart_request,
            # commands only a client should receive (Go ignores them too)
            Command.ALERT: self._ignore,
            Command.UPDATE_PADDING_SCHEME: self._ignore,
            Command.SYNACK: self._ignore,
            Command.HEART_RESPONSE: self._ignore,
            Command.SERVER_SETTINGS: self._ignore,
        }

    def _on_settings(self, frame: Frame) -> list[Effect]:
        if self.state is not State.AWAIT_SETTINGS:
            return [Note("second cmdSettings ignored")]
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

    def _on_syn(self, frame: Frame) -> list[Effect]:
        if self.state is State.AWAIT_SETTINGS:
            # [SESS-SYN-BEFORE-SETTINGS] "if the server receives cmdSYN before receiving the
            # client's cmdSettings, it must reject this session."
            return self._alert_and_close(ALERT_NO_SETTINGS)
        if frame.stream_id in self.streams:
            return [Note(f"SYN for open stream {frame.stream_id} ignored"), *_skipped(frame)]
        self.streams.add(frame.stream_id)
        self.highest_opened = max(self.highest_opened, frame.stream_id)
        return [*_skipped(frame), OpenStream(frame.stream_id)]

    def _on_psh(self, frame: Frame) -> list[Effect]:
        if frame.data and frame.stream_id > self.highest_opened:
            # cmdSYN: "The client notifies the server to open a new Stream." Data above every id
            # the client opened is not late data of a closed stream (that one was opened), so
            # this client opens streams without cmdSYN (ssrlive 0.3.2 does). Dropping the data
            # would leave it waiting for ever; instead, [SESS-MAY-REJECT] "The server has the
            # right to reject client connections that do not correctly implement this protocol",
            # and [SESS-REJECT-ALERT] "it must send cmdAlert to explain the reason, then close the
            # Session." (decisions.md D31)
            return self._alert_and_close(
                f"cmdPSH for stream {frame.stream_id}, which was never opened with cmdSYN")
        return super()._on_psh(frame)

    def _alert_and_close(self, text: str) -> list[Effect]:
        self.closed()
        return [Send(encode_frame(Command.ALERT, 0, encode_alert(text))),
                CloseSession(f"rejected: {text}")]

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

    def __init__(self, client_name: str | None, padding_md5: str) -> None:
        super().__init__()
        self.client_name = client_name
        self.padding_md5 = padding_md5
        #: the server's version from cmdServerSettings; None until (unless) one arrives
        self.server_version: int | None = None
        self._handlers = {
            Command.WASTE: self._on_waste,
            Command.PSH: self._on_psh,
            Command.FIN: self._on_fin,
            Command.ALERT: self._on_alert,
            Command.UPDATE_PADDING_SCHEME: self._on_update_padding,
            Command.SYNACK: self._on_synack,
            Command.HEART_REQUEST: self._on_heart_request,
            Command.HEART_RESPONSE: self._on_heart_response,
            Command.SERVER_SETTINGS: self._on_server_settings,
            # commands only a server should receive
            Command.SYN: self._ignore,
            Command.SETTINGS: self._ignore,
        }

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
        # sessions must use the
        # paddingScheme issued by the server" — this session keeps its own (decisions.md D2).
        return [NewPaddingScheme(frame.data)]

    def _on_alert(self, frame: Frame) -> list[Effect]:
        # [SESS-ALERT-LOG-CLOSE] "The client needs to read it and print it to the log, then both
        # parties close the session."
        text = decode_alert(frame.data)
        self.closed()
        return [CloseSession(f"server alert: {text}", alert=text)]

    def _on_synack(self, frame: Frame) -> list[Effect]:
        if frame.stream_id not in self.streams:
            return [Note(f"SYNACK for unknown stream {frame.stream_id} ignored")]
        if not frame.data:
            # "If cmdSYNACK does not carry data, it means the proxy stream handshake was
            # successful."
            return [StreamReady(frame.stream_id, None)]
        # [SESS-SYNACK-ERROR-CLOSE] "If it carries data, the data represents error information.
        # After the client receives the error information, it must close the corresponding stream."
        self.streams.discard(frame.stream_id)
        return [StreamReady(frame.stream_id, decode_alert(frame.data)),
                StreamClosed(frame.stream_id)]

    def _on_heart_response(self, frame: Frame) -> list[Effect]:
        return [*_skipped(frame), HeartbeatAnswered(frame.stream_id)]
