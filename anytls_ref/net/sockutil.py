"""Socket helpers the whole package shares: read exactly n bytes, shut a socket down quietly,
turn Nagle off.

``shutdown_quietly`` is how one thread wakes another blocked on a socket (or passes an EOF on
with SHUT_WR) without caring whether the socket is still connected: a reset or an earlier close
makes shutdown raise OSError, which here means only "nothing left to wake".
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Callable

from ..errors import ConnectionClosed

if TYPE_CHECKING:
    from .tls import ThreadSafeTLS


def recv_exactly(sock: socket.socket, n: int, *,
                 error: Callable[[str], Exception] = ConnectionClosed, what: str = "") -> bytes:
    """Exactly ``n`` bytes from ``sock``; ``error(message)`` is raised if it closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise error(f"connection closed after {len(data)} of {n} bytes{what}")
        data += chunk
    return data


def shutdown_quietly(sock: socket.socket | ThreadSafeTLS, how: int = socket.SHUT_RDWR) -> None:
    """Wake any thread blocked on ``sock`` (or, with SHUT_WR, only send EOF); OSError ignored.

    For a TLS socket this is the plain socket's shutdown: SSLSocket.shutdown would drop its TLS
    state under a thread still reading it.
    """
    try:
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, how)
        else:
            sock.shutdown(how)  # ThreadSafeTLS: the plain socket's, too
    except OSError:
        pass


def set_nodelay(sock: socket.socket) -> None:
    """Small writes (a SOCKS reply, a SYNACK) must not wait ~40 ms for a delayed ACK."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
