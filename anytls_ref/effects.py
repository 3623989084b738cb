"""anytls_ref.effects — spec "Client › Session": what the session rules (rules.py) ask the net
layer to do.

A rules object answers every received frame with a list of these: a frame to send back, data or
an event for one stream, a new padding scheme or version learned, or "close the session". They
are plain frozen values, so a test can compare them and a reader can see every outcome of a
frame in rules.TABLE.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Reason


@dataclass(frozen=True, slots=True)
class Send:
    """Write this frame to the peer."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Something happened to stream ``stream_id``; the subclass says what."""

    stream_id: int


class OpenStream(StreamEvent):
    """Server: the client opened this stream; start serving it."""


class StreamClosed(StreamEvent):
    """This stream is over (the peer's cmdFIN, after ours or answered): close it locally."""


class StreamFinished(StreamEvent):
    """Server: the client is done sending on this stream (cmdFIN); the target gets EOF, and
    its answer still goes until it ends (a half-close)."""


class HeartbeatAnswered(StreamEvent):
    """Client: a cmdHeartResponse arrived."""


@dataclass(frozen=True, slots=True)
class StreamData:
    """Data for stream ``stream_id``."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamReady:
    """Client: cmdSYNACK for ``stream_id``; on failure ``error`` is the server's text and
    ``reason`` what it means."""

    stream_id: int
    error: str | None = None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class NewPaddingScheme:
    """Client: the server asked for this padding scheme (raw bytes) on new sessions."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class PeerVersion:
    """Client: cmdServerSettings told the server's version."""

    version: int


@dataclass(frozen=True, slots=True)
class CloseSession:
    """Close the whole session (after sending any Send effect before this one)."""

    reason: Reason
    text: str
    #: the peer's cmdAlert text when the close is because of one
    alert: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Nothing to do, but worth one debug log line (skipped data, unknown command, ...)."""

    text: str


Effect = (
    Send | OpenStream | StreamData | StreamClosed | StreamFinished | StreamReady | NewPaddingScheme
    | PeerVersion | HeartbeatAnswered | CloseSession | Note
)
