"""anytls_ref.errors — the typed errors of the whole package, and the reasons they carry.

Theory of operation: every way a peer or a caller can break the protocol ends in one of these
classes, so the net layer can tell "the peer violated the spec" from "we were asked to do something
the spec forbids" from "the socket died" (that last one stays ``OSError`` and never appears here).

    AnyTLSError
    ├── ProtocolError            a rule of the protocol was broken; whose fault is the subclass:
    │   ├── LocalProtocolError   we were asked to break the spec (bad argument, bad local config)
    │   └── RemoteProtocolError  the peer broke it (bad bytes, bad order)
    ├── PaddingSchemeError       a padding scheme text is unusable (.line names the line, 1-based)
    ├── AuthenticationError      the authentication request is wrong (server: close or fall back)
    ├── PeerAlert                the peer sent cmdAlert (.message is its text)
    ├── StreamOpenError          a stream could not be opened (.reason says why, typed)
    └── ConnectionClosed         the byte stream ended in the middle of something

Protocol errors deliberately do not derive from OSError: in net/, ``except OSError`` means the
socket failed, never that a peer broke a MUST.

``Reason`` is what code decides on: why a stream did not open or a session ended. Decisions switch
on it, never on the text of an error. The protocol carries some reasons only as free text (a
cmdSYNACK error, a cmdAlert); ``reason_of_peer_text`` at the end is the one place that reads it.
"""

from __future__ import annotations

import enum


class Reason(enum.Enum):
    """Why a stream could not be opened, or why a session ended."""

    # -- the stream's target, as the server reported it in cmdSYNACK (or as we met it ourselves)
    REFUSED = "connection refused"
    NETWORK_UNREACHABLE = "network unreachable"
    HOST_UNREACHABLE = "host unreachable or name not resolved"
    TIMED_OUT = "timed out"
    TARGET_FAILED = "the server could not open the stream"
    # -- the session under the stream
    NO_SYNACK = "no cmdSYNACK in time: the session is stuck"
    STREAM_CLOSED = "the server closed the stream before answering"
    SESSION_CLOSED = "the session ended"
    UNSUPPORTED_SID = "the server accepts no stream id but 1"
    SESSION_BUSY = "the server's session takes no other stream yet"
    PEER_ALERT = "the peer sent cmdAlert"
    CLIENT_REJECTED = "the server rejected its client"
    CLIENT_CLOSING = "the client is closing"


class AnyTLSError(Exception):
    """Root of every error this package raises on purpose."""


class ProtocolError(AnyTLSError):
    """Someone broke a rule of the protocol; see the two subclasses for whom."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the spec forbids (a bug or bad configuration on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes or frames the spec does not allow."""


class PaddingSchemeError(AnyTLSError):
    """A padding scheme cannot be used. ``line`` is the 1-based line at fault, or None."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class AuthenticationError(AnyTLSError):
    """The authentication request is short or carries the wrong password hash."""


class PeerAlert(AnyTLSError):
    """The peer sent cmdAlert: it is closing the session and says why."""

    def __init__(self, message: str) -> None:
        super().__init__(f"peer alert: {message}")
        self.message = message


class StreamOpenError(AnyTLSError):
    """A stream could not be opened: the server's SYNACK error, no answer in time, a closed
    session. The message is for people; ``reason`` is for code."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


class ConnectionClosed(AnyTLSError):
    """The connection or stream ended before the expected bytes arrived (EOF, not bad bytes)."""


def reason_of_peer_text(text: str, *, alert: bool = False) -> Reason:
    """What a peer's free text means, for the two frames that carry a reason only as text: a
    cmdSYNACK error, or (``alert``) a cmdAlert.

    A cmdSYNACK error is the server's dial error: Go servers send Go's error string ("dial tcp
    10.0.0.1:80: connect: connection refused", "i/o timeout", "no such host"), ours the OS's
    ("dial 10.0.0.1:80: Connection refused"). A cmdAlert is any text; one matters to a client:
    ssrlive 0.3.x servers answer a stream id other than 1 with "unsupported sid N"
    (decisions.md D32), and ssrlive 0.5 a second stream on a session with the SYNACK error
    "session stream limit reached". Nothing else in the package looks at the words of an error.
    """
    words = text.lower()
    if alert:
        return Reason.UNSUPPORTED_SID if "unsupported sid" in words else Reason.PEER_ALERT
    if "stream limit" in words:
        # ssrlive 0.5: one stream per session, freed a moment after both FINs (decisions.md D40)
        return Reason.SESSION_BUSY
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
