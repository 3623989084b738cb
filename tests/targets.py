"""Fixtures for the local targets (the classes live in interop/targets.py, shared with the
interop suite): each fixture owns one target for the duration of a test and joins its threads."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from interop.targets import (  # noqa: F401 - re-exported for the tests
    HTTP_BODY,
    EchoServer,
    HTTPTarget,
    UdpEcho,
    ipv6_loopback_available,
    refused_port,
)


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def http_server() -> Iterator[HTTPTarget]:
    server = HTTPTarget()
    try:
        yield server
    finally:
        server.close()


class OneConnection:
    """A listener on 127.0.0.1 that accepts one connection and hands it to ``serve(conn)``
    on a thread of its own (a web server's one answer, a large download); ``close()`` joins it.
    """

    def __init__(self, serve) -> None:
        self._serve = serve
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._listener.getsockname()
        self._thread = threading.Thread(target=self._run, name="one-connection")
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return  # closed before anyone came
        with conn:
            try:
                self._serve(conn)
            except OSError:
                pass  # the peer went first

    def close(self) -> None:
        try:
            socket.socket.shutdown(self._listener, socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join()
