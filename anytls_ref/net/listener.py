"""A listening socket with one thread per accepted connection (the server and the SOCKS5/HTTP
inbound are both one of these). The threads come from ``workers.Workers``, which reuses a
thread whose connection has ended for the next one.

``close()`` stops accepting, wakes every connection still open (``_wake_all``, which a subclass
extends to end its own sessions first) and joins every thread it started: nothing is left
behind. A service stopping gracefully calls ``stop_accepting()`` first, then ``drain(grace)``,
which waits until nothing is ``busy()`` (or the grace period is over), then ``close()``.

Running out of file descriptors is survived, not spun on. The listener holds at most
``max_connections`` connections at once (by default what RLIMIT_NOFILE leaves room for, with a
descriptor to spare for each connection's target): at the limit it stops accepting, and the
kernel's backlog holds new clients until a connection ends, so a flood of silent connections
cannot take the descriptors that sessions already running need for their streams. If accept()
still fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM: other files,
other processes), it waits 5 ms, doubling to 1 s, as Go's listeners do, and says so at most
once a second.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import threading
import time
from functools import partial

from .sockutil import shutdown_quietly
from .workers import Workers

log = logging.getLogger("anytls_ref.listener")

#: listen() backlog. Python's default is 128: a burst of more connections than that overflows
#: the accept queue and the extra SYNs are retried only after 1 s, 3 s, ... (Go listens with
#: net.core.somaxconn, which also caps this number).
LISTEN_BACKLOG = 4096
#: accept() errors that mean "no descriptors or memory now": wait and try again
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: the first wait after such an error, and the longest (Go: 5 ms doubling to 1 s)
BACKOFF_FIRST, BACKOFF_MAX = 0.005, 1.0
#: at most one warning about the limits per this many seconds
WARN_EVERY = 1.0
#: descriptors kept back from RLIMIT_NOFILE for everything that is not a connection
RESERVED_FDS = 64


def default_max_connections() -> int:
    """Connections the process can hold with a descriptor to spare for each one's target."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, (soft - RESERVED_FDS) // 2)


class ThreadedListener:
    """Accepts on ``listen`` and calls ``handle(conn, peer, seq)`` on a new thread per connection.

    ``thread_name`` names the accept thread; connection threads are ``{thread_name}-{seq}``.
    """

    thread_name = "anytls-listener"

    def __init__(self, listen: tuple[str, int], *, max_connections: int | None = None) -> None:
        self.max_connections = max_connections or default_max_connections()
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self._listener = socket.create_server(listen, family=family, backlog=LISTEN_BACKLOG)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        #: the connection threads (and, for the server, the stream threads: one owner joins all)
        self.workers = Workers(self.thread_name)
        #: sockets of live connections, woken by close(); a handler may swap in its TLS socket
        self._open_socks: set[socket.socket] = set()
        self._closing = threading.Event()
        #: set by stop_accepting() (and so by close()): the accept loop ends
        self._stopped = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._seq = 0
        self._active = 0  #: connections held now (under _lock; _room is signalled when one ends)
        self._room = threading.Condition(self._lock)
        self._warned_at = float("-inf")

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
        backoff = BACKOFF_FIRST
        while self._wait_for_room():
            try:
                conn, peer = self._listener.accept()
            except OSError as exc:
                if self._stopped.is_set():
                    return
                if exc.errno in _EXHAUSTED:
                    self._warn(f"accept failed ({exc.strerror}); trying again in "
                               f"{backoff * 1000:.0f} ms")
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            with self._lock:
                if self._stopped.is_set():
                    conn.close()
                    return
                self._seq += 1
                seq = self._seq
                self._active += 1
                self._open_socks.add(conn)
            self.on_accept()
            self.workers.spawn(partial(self._run, conn, peer, seq), f"{self.thread_name}-{seq}")

    def _wait_for_room(self) -> bool:
        """Block while ``max_connections`` are held; False once accepting has stopped."""
        with self._room:
            if self._active >= self.max_connections and not self._stopped.is_set():
                self._warn(f"{self._active} connections, the limit: new ones wait in the "
                           "listen backlog until one ends (--max-connections)")
            while self._active >= self.max_connections and not self._stopped.is_set():
                self._room.wait()
            return not self._stopped.is_set()

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("%s %s:%d: %s", self.thread_name, *self.address[:2], text)

    def _run(self, conn: socket.socket, peer: tuple, seq: int) -> None:
        try:
            self.handle(conn, peer, seq)
        except Exception:  # the last line of defence: one log line, never a thread traceback
            log.exception("%s-%d: unexpected error", self.thread_name, seq)
        finally:
            with self._lock:
                self._open_socks.discard(conn)
                self._active -= 1
                self._room.notify_all()  # the accept loop, and drain()
            conn.close()

    def _wake_all(self) -> None:
        """Wake every connection thread so it can finish; subclasses end sessions first."""
        with self._lock:
            socks = list(self._open_socks)
        for sock in socks:
            shutdown_quietly(sock)

    def stop_accepting(self) -> None:
        """Close the listening socket and join the accept thread; connections go on."""
        with self._room:
            self._stopped.set()
            self._room.notify_all()
        shutdown_quietly(self._listener)  # wakes accept() on Linux
        self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join()

    def busy(self) -> int:
        """What a graceful stop waits for (called under ``_lock``): connections held; the
        server counts its streams instead (an idle session is no work to finish)."""
        return self._active

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds until nothing is ``busy()``; returns what still is.
        Whoever ends a piece of work notifies ``_room``."""
        deadline = time.monotonic() + timeout
        with self._room:
            while (busy := self.busy()) and (remaining := deadline - time.monotonic()) > 0:
                self._room.wait(remaining)
            return busy

    def close(self) -> None:
        """Stop accepting, wake every connection, and join every thread."""
        with self._room:
            self._closing.set()
        self.stop_accepting()
        self._wake_all()
        self.workers.close()
