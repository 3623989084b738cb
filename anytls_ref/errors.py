"""anytls_ref.errors — the typed errors of the whole package.

Theory of operation: every way a peer or a caller can break the protocol ends in one of these
classes, so the net layer can tell "the peer violated the spec" from "we were asked to do something
the spec forbids" from "the socket died" (that last one stays ``OSError`` and never appears here).

    AnyTLSError
    ├── ProtocolError            .spec_ref (the spec section), .alert (text to send in cmdAlert, or None)
    │   ├── LocalProtocolError   we were asked to break the spec (bad argument, bad local config)
    │   └── RemoteProtocolError  the peer broke it (bad bytes, bad order)
    ├── PaddingSchemeError       a padding scheme text is unusable (.line names the line, 1-based)
    ├── AuthenticationError      the authentication request is wrong (server: close or fall back)
    ├── PeerAlert                the peer sent cmdAlert (.message is its text)
    └── ConnectionClosed         the byte stream ended in the middle of something

Protocol errors deliberately do not derive from OSError: in net/, ``except OSError`` means the
socket failed, never that a peer broke a MUST.
"""

from __future__ import annotations


class AnyTLSError(Exception):
    """Root of every error this package raises on purpose."""


class ProtocolError(AnyTLSError):
    """Someone broke a rule of the protocol; see the two subclasses for whom."""

    def __init__(self, message: str, *, spec_ref: str = "", alert: str | None = None) -> None:
        super().__init__(message)
        #: The spec section the broken rule lives in, e.g. "Server › Session".
        self.spec_ref = spec_ref
        #: When set, the server answers with cmdAlert carrying this text, then closes.
        self.alert = alert


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


class ConnectionClosed(AnyTLSError):
    """The connection or stream ended before the expected bytes arrived (EOF, not bad bytes)."""
