"""Copy loops: stream ↔ socket (both roles) and socket ↔ socket (the server's fallback).

In ``relay_stream`` a stream's end ends the socket; the socket's EOF ends the stream, except
that the client keeps receiving after its application's EOF, for a half-close (decisions.md
D40). The fallback relay (``relay_sockets``) is plain TCP on both sides and keeps TCP's
half-close, so a visitor sees exactly what the fallback service itself would show it.
"""

from __future__ import annotations

import logging
import mmap
import select
import socket
import threading

from ..errors import AnyTLSError
from ..frame import HEADER_SIZE
from .sockutil import shutdown_quietly
from .stream import Stream
from .tls import ThreadSafeTLS

log = logging.getLogger("anytls_ref.relay")

#: Bytes per socket read in the copy loops.
COPY_SIZE = 1 << 16
#: Data per cmdPSH the relay sends: header + data fill exactly four full TLS records (16 KiB
#: each), so no write ends in a runt record, and it stays under the 65535-byte frame limit.
PSH_DATA_SIZE = 4 * (1 << 14) - HEADER_SIZE


def _wait_for_hangup(sock: socket.socket | ThreadSafeTLS) -> None:
    """Block until ``sock`` is reset or shut down both ways. Asked for no event at all, poll()
    still reports those two (POLLERR, POLLHUP); neither calls into an SSL object."""
    raw = sock.sock if isinstance(sock, ThreadSafeTLS) else sock
    fd = raw.fileno()
    if fd < 0:
        return
    poller = select.poll()
    poller.register(fd, 0)
    poller.poll()


def relay_stream(stream: Stream, sock: socket.socket, *, name: str,
                 linger: float | None = None) -> bool | None:
    """Copy both ways between ``stream`` and ``sock`` until both end; closes the stream.

    The session reader writes the stream's data into ``sock`` (Stream.attach_sink: no thread
    hand-off per frame) and shuts ``sock`` down when the stream ends, which ends the loop here;
    the calling thread copies socket → stream. The caller still owns (and closes) ``sock``.

    EOF from ``sock`` (decisions.md D40): with ``linger`` None (the server: its target ended)
    the stream is closed, cmdFIN and all; with a number (the client: its application finished
    sending, perhaps only half-closed) cmdFIN goes out and the peer's data still goes into
    ``sock`` until the peer's FIN, or until nothing has come for ``linger`` seconds. Returns
    whether that FIN came (None: no linger took place).
    """
    stream.attach_sink(sock)
    # received straight behind room for the frame header: one buffer, no copies; anonymous
    # memory is resident only once written, so a stream that sends little does not cost 64 KiB
    buf = memoryview(mmap.mmap(-1, HEADER_SIZE + PSH_DATA_SIZE))
    data = buf[HEADER_SIZE:]
    at_eof = False
    peer_fin = None
    try:
        while n := sock.recv_into(data):
            stream.send_in_place(buf, n)
        at_eof = True
    except (OSError, AnyTLSError) as exc:
        log.debug("%s: socket → stream ended: %s", name, exc)
    finally:
        if at_eof and linger is not None:
            stream.finish()
            peer_fin = stream.wait_closed(linger)
        shutdown_quietly(sock)  # both directions of the socket end now
        stream.close()  # FIN, unless the stream is over on the wire already
    return peer_fin


def relay_sockets(a: socket.socket | ThreadSafeTLS, b: socket.socket, *, name: str) -> None:
    """Copy both ways between two sockets, half-close included (the fallback relay).

    EOF from one side is passed on as EOF only (SHUT_WR of the other socket) and the other
    direction goes on: a visitor that shuts down its sending side after its request still gets
    the whole answer, as from the service itself. Both sockets are shut down completely once
    both directions have ended, or at once when either fails (a reset, a failed write).

    A TLS socket must come wrapped in ThreadSafeTLS: both directions use it at once. EOF is
    passed to it as the plain socket's SHUT_WR, without a close_notify: SSLSocket.unwrap
    would drop the TLS state that the direction still reading from it uses.
    """
    lock = threading.Lock()
    copying = 2  # directions not yet at EOF

    def copy(src: socket.socket | ThreadSafeTLS, dst: socket.socket | ThreadSafeTLS) -> None:
        nonlocal copying
        at_eof = False
        try:
            while data := src.recv(COPY_SIZE):
                dst.sendall(data)
            at_eof = True
        except OSError as exc:
            # a reset or a failed write: nothing left to half-close, both directions end now
            log.debug("%s: copy ended: %s", name, exc)
        finally:
            if at_eof:
                # pass the EOF on; the other direction goes on
                shutdown_quietly(dst, socket.SHUT_WR)
                with lock:
                    copying -= 1
                    last = copying == 0
                if not last:
                    # The other direction may wait long for its EOF. Meanwhile a reset of
                    # ``src`` (its peer gave up) or a full shutdown of it (Server.close wakes
                    # the TLS socket so) must still end the relay: wait for either, then wake
                    # the other direction below.
                    _wait_for_hangup(src)
            shutdown_quietly(src)
            shutdown_quietly(dst)

    helper = threading.Thread(target=copy, args=(b, a), name=f"{name}-back")
    helper.start()
    try:
        copy(a, b)
    finally:
        helper.join()
