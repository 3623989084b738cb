"""The client's diagnoses: why it cannot use its anytls server, with the likely cause and the
next step, for the failures people meet first.

| what the client sees                                  | what it says                       |
|-------------------------------------------------------|------------------------------------|
| TCP refused, timed out, no route, name not resolved    | server unreachable: is it running, the address right? |
| TLS: WRONG_VERSION_NUMBER (plain bytes where TLS was)  | is this an anytls server? it answered plain TCP/HTTP |
| TLS: the server closed or reset during the handshake   | not a TLS server, or it refuses this client's TLS |
| certificate not trusted (tls.connect_tls says so)      | --pin, --ca or --insecure          |
| certificate for another name (SNI mismatch)            | --sni NAME the certificate holds   |
| the server closed right after the authentication      | wrong password?                    |
| the server answered HTTP right after the authentication | wrong password: a fallback web server answered |
| cmdSYNACK with an error                                | the server could not reach the target (its text) |

An anytls server does not say "wrong password": it closes, or hands the connection to a web
server ("fallback"), by design, so a probe cannot tell it from a web site. So the client infers
it: a session that ends before the server sent a single frame, after the client's password
went out, most likely had the wrong one.
"""

from __future__ import annotations

import errno
import socket
import ssl

from ..errors import AnyTLSError, Reason
from .tls import CertificateError

#: Reasons a cmdSYNACK (or the stream's end) gives for a target the server could not reach.
TARGET_REASONS = (Reason.REFUSED, Reason.NETWORK_UNREACHABLE, Reason.HOST_UNREACHABLE,
                  Reason.TIMED_OUT, Reason.TARGET_FAILED)


def connect_failure(exc: BaseException, server: tuple[str, int]) -> str:
    """Why the TCP connection or TLS handshake with the anytls server ``server`` failed."""
    where = "%s:%d" % server
    if isinstance(exc, CertificateError):
        return str(exc)  # tls.connect_tls: names the cause and what to add
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "WRONG_VERSION_NUMBER":
            return (f"{where} answered, but not with TLS: is this an anytls server? it answered "
                    "plain TCP/HTTP (check the address and port)")
        return (f"TLS handshake with {where} failed ({exc.reason or exc}): is this an anytls "
                "server? a TLS server that refuses this client's TLS version or name?")
    if isinstance(exc, ConnectionRefusedError):
        return (f"server unreachable: nothing listens on {where} (connection refused): is the "
                "server running, and the port right?")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return (f"server unreachable: no answer from {where} in time: a firewall, or the wrong "
                "address?")
    if isinstance(exc, socket.gaierror):
        return f"server unreachable: the name {server[0]} does not resolve ({exc.strerror})"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError)) or (
            isinstance(exc, OSError) and exc.errno == errno.ECONNRESET):
        return (f"{where} reset the connection during the TLS handshake: is this an anytls "
                "server? (or something on the way blocks it)")
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"server unreachable: no route to {where} ({exc.strerror})"
    return f"cannot reach the anytls server {where}: {exc}"


def silent_server(first_bytes: bytes, server: tuple[str, int]) -> str:
    """A session ended by the server before it sent a single frame, after our authentication:
    most likely the password is wrong."""
    where = "%s:%d" % server
    if first_bytes.startswith(b"HTTP/") or first_bytes.lstrip().startswith(b"<"):
        answer = first_bytes.split(b"\n", 1)[0].strip().decode("latin-1")[:40]
        return (f"{where} answered like a web server ({answer!r}) right after the "
                "authentication: wrong password? (an anytls server hands a failed "
                "authentication to its fallback web server) check -p")
    return (f"{where} closed the connection right after the authentication, before sending "
            "anything: wrong password? (an anytls server closes on a wrong one) check -p")


def refused_target(text: str) -> str:
    """A stream whose target the server could not reach (cmdSYNACK's text)."""
    return (f"the anytls server could not reach the target: {text} (the server and the client "
            "are fine; the target is down or blocked from the server)")


def stream_failure(exc: AnyTLSError | str, reason: Reason | None) -> str:
    """A StreamOpenError (or its text), with the diagnosis when the target was refused."""
    return refused_target(str(exc)) if reason in TARGET_REASONS else str(exc)
