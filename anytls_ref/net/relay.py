"""Copy loops: stream ↔ socket (both roles) and socket ↔ socket (the server's fallback).

anytls has no half-close ("cmdFIN ... a.k.a EOF mark" closes the whole stream), so when either
direction ends, both do: the other side is shut down, which wakes its blocked reader.
"""

from __future__ import annotations

import logging
import socket
import threading

from ..errors import AnyTLSError
from .stream import Stream
from .tls import ThreadSafeTLS

log = logging.getLogger("anytls_ref.relay")

#: Bytes per socket read in the copy loops.
COPY_SIZE = 1 << 16


def set_nodelay(sock: socket.socket) -> None:
    """Small writes (a SOCKS reply, a SYNACK) must not wait ~40 ms for a delayed ACK."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _shutdown(sock: socket.socket | ThreadSafeTLS) -> None:
    """Wake any thread blocked on ``sock``. For a TLS socket this is the plain socket's
    shutdown: SSLSocket.shutdown would drop its TLS state under a thread still reading it."""
    try:
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
            sock.shutdown(socket.SHUT_RDWR)  # ThreadSafeTLS: the plain socket's, too
    except OSError:
        pass


def relay_stream(stream: Stream, sock: socket.socket, *, name: str) -> None:
    """Copy both ways between ``stream`` and ``sock`` until either ends; closes the stream.

    The calling thread copies stream → socket; a helper thread copies socket → stream and is
    joined before returning. The caller still owns (and closes) ``sock``.
    """

    def socket_to_stream() -> None:
        try:
            while data := sock.recv(COPY_SIZE):
                stream.sendall(data)
        except (OSError, AnyTLSError) as exc:
            log.debug("%s: socket → stream ended: %s", name, exc)
        finally:
            stream.close()  # target EOF → FIN; also wakes the other direction

    helper = threading.Thread(target=socket_to_stream, name=f"{name}-up")
    helper.start()
    try:
        while data := stream.recv(COPY_SIZE):
            sock.sendall(data)
    except (OSError, AnyTLSError) as exc:
        log.debug("%s: stream → socket ended: %s", name, exc)
    finally:
        _shutdown(sock)  # no half-close in anytls: wake the helper's recv
        stream.close()
        helper.join()


def relay_sockets(a: socket.socket | ThreadSafeTLS, b: socket.socket, *, name: str) -> None:
    """Copy both ways between two sockets until either ends (the fallback relay).

    A TLS socket must come wrapped in ThreadSafeTLS: both directions use it at once."""

    def copy(src: socket.socket | ThreadSafeTLS, dst: socket.socket | ThreadSafeTLS) -> None:
        try:
            while data := src.recv(COPY_SIZE):
                dst.sendall(data)
        except OSError as exc:
            log.debug("%s: copy ended: %s", name, exc)
        finally:
            _shutdown(src)
            _shutdown(dst)

    helper = threading.Thread(target=copy, args=(b, a), name=f"{name}-back")
    helper.start()
    try:
        copy(a, b)
    finally:
        helper.join()
