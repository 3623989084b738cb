"""The processes behind the benchmark (interop/bench.py) other than the implementations: the
target, and the two halves of the ``tls-chain`` baseline. bench.py starts each as
``python interop/bench_procs.py --role ROLE --port N ...``.

* target:     a sink/source on 127.0.0.1: one thread and a selector, so it neither starts
              threads nor contends for a GIL (the ``direct`` pair shows what it can move).
              Protocol: one byte mode + u64 length (``HEADER``), then U(pload) into the sink,
              acknowledged with b"K"; D(ownload) of that many bytes; P(ing): echo.
* tls-client: SOCKS5 (CONNECT, IPv4) on its port → TLS to the tls-server.
* tls-server: TLS on its port → the address in the first 6 bytes.

The chain is a plain Python TLS relay in the same process layout as an anytls pair, thread per
direction, no framing. It turns TLS 1.3 session tickets off so its two threads may share the SSL
object without a lock (a shortcut anytls_ref cannot take: real peers send tickets; see tls.py
ThreadSafeTLS).
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import ssl
import struct
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop.peers import LOOPBACK  # noqa: E402

from anytls_ref.net.sockutil import recv_exactly, set_nodelay, shutdown_quietly  # noqa: E402

MiB = 1 << 20
# target protocol: 1 byte mode + u64 length
MODE_UPLOAD, MODE_DOWNLOAD, MODE_PING = b"U", b"D", b"P"
HEADER = struct.Struct(">cQ")


def recv_exact(sock: socket.socket, n: int) -> bytes:
    return recv_exactly(sock, n, error=ConnectionError)


# --------------------------------------------------------------------------- the target


def run_target(port: int) -> None:
    """Sink/source on 127.0.0.1:port (``--role target``): one thread, one selector, so a new
    connection is served at once (no thread to start) and 1000 of them cost no GIL contention."""
    source = memoryview(os.urandom(MiB))
    sink = memoryview(bytearray(MiB))
    listener = socket.create_server((LOOPBACK, port), backlog=4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)

    class Conn:
        def __init__(self, sock: socket.socket) -> None:
            self.sock, self.head, self.mode, self.left = sock, b"", None, 0

    def close(c: Conn) -> None:
        sel.unregister(c.sock)
        c.sock.close()

    def readable(c: Conn) -> None:
        if c.mode is None:
            chunk = c.sock.recv(HEADER.size - len(c.head))
            if not chunk:
                return close(c)
            c.head += chunk
            if len(c.head) < HEADER.size:
                return
            c.mode, c.left = HEADER.unpack(c.head)
            if c.mode == MODE_DOWNLOAD:
                sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
            return
        if c.mode == MODE_UPLOAD:
            k = c.sock.recv_into(sink)
            if not k:
                return close(c)
            c.left -= k
            if c.left <= 0:
                c.sock.send(b"K")
        elif c.mode == MODE_PING:
            data = c.sock.recv(4096)
            if not data:
                return close(c)
            c.sock.send(data)  # a few bytes: the socket buffer has room
        elif not c.sock.recv(4096):  # download: anything but EOF is ignored
            close(c)

    def writable(c: Conn) -> None:
        c.left -= c.sock.send(source[: min(c.left, MiB)])
        if c.left <= 0:
            sel.modify(c.sock, selectors.EVENT_READ, c)

    while True:
        for key, events in sel.select():
            if key.data is None:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                set_nodelay(sock)
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, Conn(sock))
                continue
            c = key.data
            try:
                if events & selectors.EVENT_READ:
                    readable(c)
                if events & selectors.EVENT_WRITE and c.sock.fileno() >= 0:
                    writable(c)
            except BlockingIOError:
                pass
            except OSError:
                if c.sock.fileno() >= 0:
                    close(c)


# --------------------------------------------------------------------------- the TLS chain baseline


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways, a thread per direction, until either ends."""

    def copy(src: socket.socket, dst: socket.socket) -> None:
        buf = memoryview(bytearray(1 << 18))
        try:
            while n := src.recv_into(buf):
                dst.sendall(buf[:n])
        except OSError:
            pass
        shutdown_quietly(src)
        shutdown_quietly(dst)

    t = threading.Thread(target=copy, args=(b, a), daemon=True)
    t.start()
    copy(a, b)
    t.join()


def run_tls_client(port: int, server_port: int) -> None:
    """SOCKS5 (CONNECT, IPv4) on port → TLS to the tls-chain server (``--role tls-client``)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    listener = socket.create_server((LOOPBACK, port), backlog=4096)

    def serve(conn: socket.socket) -> None:
        with conn:
            set_nodelay(conn)
            try:
                recv_exact(conn, 3)
                conn.sendall(b"\x05\x00")
                request = recv_exact(conn, 10)  # 05 01 00 01 ip4 port
                raw = socket.create_connection((LOOPBACK, server_port))
                set_nodelay(raw)
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(request[4:])
                    conn.sendall(b"\x05\x00\x00\x01\0\0\0\0\0\0")
                    _relay(conn, tls)
            except OSError:
                pass

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def run_tls_server(port: int, cert: str, key: str) -> None:
    """TLS on port → the address in the first 6 bytes (``--role tls-server``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.num_tickets = 0  # no post-handshake messages: the relay threads share no TLS state
    listener = socket.create_server((LOOPBACK, port), backlog=4096)

    def serve(raw: socket.socket) -> None:
        set_nodelay(raw)
        try:
            with ctx.wrap_socket(raw, server_side=True) as tls:
                addr = recv_exact(tls, 6)
                host = socket.inet_ntoa(addr[:4])
                (tport,) = struct.unpack(">H", addr[4:])
                with socket.create_connection((host, tport)) as out:
                    set_nodelay(out)
                    _relay(tls, out)
        except OSError:
            pass
        finally:
            raw.close()

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=["target", "tls-client", "tls-server"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-port", type=int, help="tls-client: the tls-server's port")
    parser.add_argument("--cert", help="tls-server: certificate file")
    parser.add_argument("--key", help="tls-server: key file")
    args = parser.parse_args()
    if args.role == "target":
        run_target(args.port)
    elif args.role == "tls-client":
        run_tls_client(args.port, args.server_port)
    else:
        run_tls_server(args.port, args.cert, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
