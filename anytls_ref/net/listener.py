"""A listening socket with one thread per accepted connection (the server and the SOCKS5/HTTP
inbound are both one of these). The threads come from ``workers.Workers``, which reuses a
thread whose connection has ended for the next one.

``close()`` stops accepting, wakes every connection still open (``_wake_all``, which a subclass
extends to end its own sessions first) and joins every thread it started: nothing is left
behind.
"""

from __future__ import annotations

import logging
import socket
from functools import partial
import threading

from .workers import Workers

log = logging.getLogger("anytls_ref.listener")

#: listen() backlog. Python's default is 128: a burst of more connections than that overflows
#: the accept queue and the extra SYNs are retried only after 1 s, 3 s, ... (Go listens with
#: net.core.somaxconn, which also caps this number).
LISTEN_BACKLOG = 4096


def wake(sock: socket.socket) -> None:
    """Shut ``sock`` down to wake any thread blocked on it. For a TLS socket this is the plain
    socket's shutdown: SSLSocket.shutdown would drop its TLS object under a thread using it."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class ThreadedListener:
    """Accepts on ``listen`` and calls ``handle(conn, peer, seq)`` on a new thread per connection.

    ``thread_name`` names the accept thread; connection threads are ``{thread_name}-{seq}``.
    """

    thread_name = "anytls-listener"

    def __init__(self, listen: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self._listener = socket.create_server(listen, family=family, backlog=LISTEN_BACKLOG)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        #: the connection threads (and, for the server, the stream threads: one owner joins all)
        self.workers = Workers(self.thread_name)
        #: sockets of live connections, woken by close(); a handler may swap in its TLS socket
        self._open_socks: set[socket.socket] = set()
        self._closing = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._seq = 0

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._accept_thread = threading.Thread(target=self._accept_loop, name=self.thread_name)
        self._accept_thread.start()

    def handle(self, conn: socket.socket, peer: tuple, seq: int) -> None:
        raise NotImplementedError

    def on_accept(self) -> None:
        """Called for each accepted connection (counters)."""

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                conn, peer = self._listener.accept()
            except OSError:
                if self._closing.is_set():
                    return
                continue
            with self._lock:
                if self._closing.is_set():
                    conn.close()
                    return
                self._seq += 1
                seq = self._seq
                self._open_socks.add(conn)
            self.on_accept()
            self.workers.spawn(partial(self._run, conn, peer, seq), f"{self.thread_name}-{seq}")

    def _run(self, conn: socket.socket, peer: tuple, seq: int) -> None:
        try:
            self.handle(conn, peer, seq)
        except Exception:  # the last line of defence: one log line, never a thread traceback
            log.exception("%s-%d: unexpected error", self.thread_name, seq)
        finally:
            with self._lock:
                self._open_socks.discard(conn)
            conn.close()

    def _wake_all(self) -> None:
        """Wake every connection thread so it can finish; subclasses end sessions first."""
        with self._lock:
            socks = list(self._open_socks)
        for sock in socks:
            wake(sock)

    def close(self) -> None:
        """Stop accepting, wake every connection, and join every thread."""
        self._closing.set()
        wake(self._listener)  # wakes accept() on Linux
        self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join()
        self._wake_all()
        self.workers.close()
