"""Local targets the probe (and the tests, and the interop suite) dial through a server.

``probe server`` needs somewhere for the server under test to connect: an ``EchoServer`` on
127.0.0.1 (streams that must work) and a ``refused_port`` (a stream whose dial must fail). They
live in the package because the probe needs them at run time; interop/targets.py re-exports them
next to the HTTP and UDP targets only tests use.

The echo server serves every connection on its own thread and, on ``close()``, stops accepting,
wakes every connection and joins every thread it started (tests fail on a leaked thread).
"""

from __future__ import annotations

import socket
import threading


class EchoServer:
    """Sends back every byte it receives, per connection, until the peer closes."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, 0), family=_family(host))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()
        self._closing = threading.Event()
        self.connections = 0  #: connections accepted so far
        self._accept_thread = threading.Thread(target=self._accept_loop, name="echo-accept")
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                if self._closing.is_set():
                    conn.close()
                    return
                self.connections += 1
                thread = threading.Thread(target=self._echo, args=(conn,), name="echo-conn")
                self._threads.add(thread)
                self._conns.add(conn)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(1 << 16):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())
            conn.close()

    def close(self) -> None:
        self._closing.set()
        _wake(self._listener)
        self._listener.close()
        self._accept_thread.join()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _wake(conn)
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return
            for thread in threads:
                thread.join()


def refused_port() -> int:
    """A loopback port with nothing listening on it (connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _wake(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
