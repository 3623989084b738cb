"""Local targets the probe (and the tests, and the interop suite) dial through a server.

``probe server`` needs somewhere for the server under test to connect: an ``EchoServer``
(streams that must work) and a ``refused_port`` (a stream whose dial must fail), both on
127.0.0.1 unless ``--target-host`` names an address of this machine the server can reach. They
live in the package because the probe needs them at run time; the HTTP and UDP targets only
tests and the interop suite use are in interop/targets.py.

The echo server is a ThreadedListener: a thread per connection, and ``close()`` stops
accepting, wakes every connection and joins every thread it started.
"""

from __future__ import annotations

import socket

from ..net.listener import ThreadedListener


class EchoServer(ThreadedListener):
    """Sends back every byte it receives, per connection, until the peer closes."""

    thread_name = "echo"

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0))
        self.connections = 0  #: connections accepted so far
        self.start()

    def on_accept(self) -> None:
        self.connections += 1

    def handle(self, conn: socket.socket, peer: tuple, seq: int) -> None:
        try:
            while data := conn.recv(1 << 16):
                conn.sendall(data)
        except OSError:
            pass


def refused_port(host: str = "127.0.0.1") -> int:
    """A port of ``host`` (an address of this machine) with nothing listening on it: connecting
    to it is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
