"""Local targets for tests and the interop suite: TCP echo, a small HTTP server, UDP echo.

Each target listens on an ephemeral loopback port, serves every connection on its own thread
and, on ``close()``, stops accepting, wakes every connection and joins every thread it started
(the autouse fixture in tests/conftest.py fails a test that leaves a thread behind; its fixtures
own the targets there). The TCP echo server and ``refused_port`` live in
anytls_ref/probe/targets.py, because the ``probe`` command needs them at run time.
"""

from __future__ import annotations

import http.server
import socket
import threading

from anytls_ref.net.sockutil import shutdown_quietly

HTTP_BODY = b"hello from the anytls-ref test target\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: the target closes after it
    timeout = 10  # a connection that never sends its request cannot hold close() forever

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        body = HTTP_BODY + f"path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # keep the test output quiet
        pass


class HTTPTarget(http.server.ThreadingHTTPServer):
    """An HTTP/1.0 server answering every GET with HTTP_BODY plus the path it was asked for.

    ``requests`` records (method, request target, headers) of every request it served.
    """

    daemon_threads = False  # handler threads are joined by server_close()
    block_on_close = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.address_family = _family(host)
        super().__init__((host, 0), _Handler)
        self.address: tuple[str, int] = self.server_address[:2]
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="http")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def close(self) -> None:
        self.shutdown()
        self._thread.join()
        self.server_close()  # joins the handler threads


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


class UdpEcho:
    """Sends every datagram back to its sender, on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.sock.getsockname()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-echo")
        self._thread.start()

    def _run(self) -> None:
        while True:
            data, peer = self.sock.recvfrom(65535)
            if self._closing.is_set():
                return
            self.sock.sendto(data, peer)

    def close(self) -> None:
        self._closing.set()
        shutdown_quietly(self.sock)  # a blocked recvfrom returns at once on Linux
        self._thread.join()
        self.sock.close()


class OneConnection:
    """A listener on 127.0.0.1 for one connection: ``handle(conn)`` runs on a thread of its own
    (a web server's one answer, a large download); what it returns is ``result``. ``join()``
    waits for it to finish, ``close()`` stops waiting for a connection and joins."""

    def __init__(self, handle) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._listener.getsockname()
        self.result: object = None
        self._handle = handle
        self._thread = threading.Thread(target=self._run, name="one-connection")
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return  # closed before anyone came
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.result = self._handle(conn)
            except OSError:
                pass  # the peer went first

    def join(self, timeout: float = 10.0) -> object:
        """Wait for the connection's handler to finish; its result."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the server thread did not finish"
        self._listener.close()
        return self.result

    def close(self) -> None:
        shutdown_quietly(self._listener)
        self._listener.close()
        self._thread.join()
