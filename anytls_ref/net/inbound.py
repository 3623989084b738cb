"""The client's local listener: SOCKS5 (RFC 1928) and HTTP proxy on one port.

The first byte tells them apart: 0x05 is SOCKS5; an ASCII letter starts an HTTP request
(``CONNECT host:port`` or an absolute-URI request such as ``GET http://host/``). Anything else
is closed with a log line. Each accepted connection gets one thread, which opens an anytls
stream through the Client and then relays.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from urllib.parse import urlsplit

from ..errors import AnyTLSError, Reason, StreamOpenError
from ..socksaddr import SocksAddr, encode_socksaddr
from .client import Client
from .listener import ThreadedListener
from .relay import recv_exactly as _recv_exactly
from .relay import relay_stream, set_nodelay
from .stream import Stream
from .udp import UdpAssociation

log = logging.getLogger("anytls_ref.inbound")

SOCKS_VERSION = 0x05
SOCKS_NO_AUTH = 0x00
SOCKS_NO_ACCEPTABLE = 0xFF
SOCKS_CMD_CONNECT = 0x01
SOCKS_CMD_UDP_ASSOCIATE = 0x03
# reply codes (RFC 1928 §6)
REP_SUCCEEDED = 0x00
REP_GENERAL_FAILURE = 0x01
REP_NETWORK_UNREACHABLE = 0x03
REP_HOST_UNREACHABLE = 0x04
REP_CONNECTION_REFUSED = 0x05
REP_TTL_EXPIRED = 0x06
REP_COMMAND_NOT_SUPPORTED = 0x07
REP_ADDRESS_TYPE_NOT_SUPPORTED = 0x08

MAX_HTTP_HEAD = 64 * 1024
HANDSHAKE_TIMEOUT = 30.0


#: The SOCKS5 reply for each reason a stream could not be opened; any other: general failure.
SOCKS_REPLY = {
    Reason.REFUSED: REP_CONNECTION_REFUSED,
    Reason.NETWORK_UNREACHABLE: REP_NETWORK_UNREACHABLE,
    Reason.HOST_UNREACHABLE: REP_HOST_UNREACHABLE,
    Reason.TIMED_OUT: REP_TTL_EXPIRED,
    Reason.NO_SYNACK: REP_TTL_EXPIRED,
}


def server_failure(exc: OSError | AnyTLSError) -> StreamOpenError:
    """The anytls server itself could not be reached (TCP, TLS or authentication failed), as
    a stream-open failure: refused, timed out, network unreachable, or else host unreachable."""
    if isinstance(exc, ConnectionRefusedError):
        reason = Reason.REFUSED
    elif isinstance(exc, TimeoutError):
        reason = Reason.TIMED_OUT
    elif isinstance(exc, OSError) and exc.errno == errno.ENETUNREACH:
        reason = Reason.NETWORK_UNREACHABLE
    else:
        reason = Reason.HOST_UNREACHABLE
    return StreamOpenError(f"server unreachable: {exc}", reason)


class ProtocolViolation(Exception):
    """The local application spoke broken SOCKS5 or HTTP."""


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    return _recv_exactly(sock, n, error=ProtocolViolation, what=" of the handshake")


class ProxyInbound(ThreadedListener):
    """SOCKS5 + HTTP proxy listener feeding a Client, which it owns: ``close()`` closes the
    client too (a handler waiting in open_stream then fails at once) and joins everything."""

    thread_name = "anytls-in"

    def __init__(self, listen: tuple[str, int], client: Client) -> None:
        super().__init__(listen)
        self.client = client

    def start(self) -> None:
        super().start()
        log.info("SOCKS5/HTTP proxy listening on %s:%d", *self.address)

    def _wake_all(self) -> None:
        super()._wake_all()
        self.client.close()

    def handle(self, conn: socket.socket, peer: tuple, seq: int) -> None:
        name = f"in {seq}"
        try:
            set_nodelay(conn)
            conn.settimeout(HANDSHAKE_TIMEOUT)
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                return
            if first[0] == SOCKS_VERSION:
                self._socks5(conn, name)
            elif first.isalpha():
                self._http(conn, name)
            else:
                log.info("%s: first byte 0x%02x is neither SOCKS5 nor HTTP; closing",
                         name, first[0])
        except (ProtocolViolation, OSError, AnyTLSError) as exc:
            log.info("%s: %s", name, exc)

    def _open(self, target: SocksAddr, name: str) -> Stream | StreamOpenError:
        """A stream to ``target``, or why there is none."""
        try:
            return self.client.open_stream(target)
        except StreamOpenError as exc:
            log.info("%s: %s: %s", name, target, exc)
            return exc
        except (OSError, AnyTLSError) as exc:
            log.warning("%s: cannot reach the anytls server: %s", name, exc)
            return server_failure(exc)

    # ---- SOCKS5 ----

    def _socks5(self, conn: socket.socket, name: str) -> None:
        _, n_methods = recv_exactly(conn, 2)
        methods = recv_exactly(conn, n_methods)
        if SOCKS_NO_AUTH not in methods:
            conn.sendall(bytes((SOCKS_VERSION, SOCKS_NO_ACCEPTABLE)))
            raise ProtocolViolation("SOCKS5 client offers no 'no authentication' method")
        conn.sendall(bytes((SOCKS_VERSION, SOCKS_NO_AUTH)))
        version, command, _, atyp = recv_exactly(conn, 4)
        if version != SOCKS_VERSION:
            raise ProtocolViolation(f"SOCKS request version {version}")
        target = self._socks_addr(conn, atyp)
        if target is None:
            self._socks_reply(conn, REP_ADDRESS_TYPE_NOT_SUPPORTED)
            raise ProtocolViolation(f"SOCKS5 address type {atyp} not supported")
        if command == SOCKS_CMD_UDP_ASSOCIATE:
            self._udp_associate(conn, name)
            return
        if command != SOCKS_CMD_CONNECT:
            self._socks_reply(conn, REP_COMMAND_NOT_SUPPORTED)
            raise ProtocolViolation(f"SOCKS5 command {command} not supported")
        stream = self._open(target, name)
        if isinstance(stream, StreamOpenError):
            # a refused target behind a v2 server is a SOCKS failure, not "success then close"
            self._socks_reply(conn, SOCKS_REPLY.get(stream.reason, REP_GENERAL_FAILURE))
            return
        try:
            self._socks_reply(conn, REP_SUCCEEDED)
            conn.settimeout(None)
            relay_stream(stream, conn, name=f"{name} {target}")
        finally:
            stream.close()

    def _udp_associate(self, conn: socket.socket, name: str) -> None:
        """UDP ASSOCIATE: relay until the SOCKS TCP connection closes (RFC 1928 §7)."""
        association = UdpAssociation(self.client.open_stream, conn.getsockname()[0],
                                     conn.getpeername()[0], name)
        try:
            host, port = association.address
            reply = bytes((SOCKS_VERSION, REP_SUCCEEDED, 0x00)) + encode_socksaddr(
                SocksAddr(host, port))
            association.start()
            conn.sendall(reply)
            conn.settimeout(None)
            # "A UDP association terminates when the TCP connection that the UDP ASSOCIATE
            # request arrived on terminates."
            while conn.recv(4096):
                pass
        finally:
            association.close()

    @staticmethod
    def _socks_addr(conn: socket.socket, atyp: int) -> SocksAddr | None:
        if atyp == 0x01:
            host = socket.inet_ntop(socket.AF_INET, recv_exactly(conn, 4))
        elif atyp == 0x04:
            host = socket.inet_ntop(socket.AF_INET6, recv_exactly(conn, 16))
        elif atyp == 0x03:
            (length,) = recv_exactly(conn, 1)
            host = recv_exactly(conn, length).decode("ascii", errors="replace")
        else:
            return None
        (port,) = struct.unpack(">H", recv_exactly(conn, 2))
        return SocksAddr(host, port)

    @staticmethod
    def _socks_reply(conn: socket.socket, code: int) -> None:
        conn.sendall(bytes((SOCKS_VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0)))

    # ---- HTTP proxy ----

    def _http(self, conn: socket.socket, name: str) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(8192)
            if not chunk:
                raise ProtocolViolation("connection closed inside the HTTP request head")
            head += chunk
            if len(head) > MAX_HTTP_HEAD:
                conn.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
                raise ProtocolViolation("HTTP request head too large")
        head, _, body = head.partition(b"\r\n\r\n")
        request_line, *header_lines = head.split(b"\r\n")
        try:
            method, uri, version = request_line.decode("latin-1").split(" ")
        except ValueError:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            raise ProtocolViolation(f"bad HTTP request line {request_line[:80]!r}") from None
        if method.upper() == "CONNECT":
            host, _, port = uri.rpartition(":")
            target = SocksAddr(host.strip("[]"), int(port)) if port.isdigit() and host else None
            first = body
        else:
            url = urlsplit(uri)
            if url.scheme.lower() != "http" or not url.hostname:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                raise ProtocolViolation(f"not a proxy request: {method} {uri[:80]}")
            target = SocksAddr(url.hostname, url.port or 80)
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            # origin-form request line; one request per connection (Connection: close)
            kept = [h for h in header_lines if not h.lower().startswith(
                (b"proxy-connection:", b"proxy-authorization:", b"connection:", b"keep-alive:"))]
            first = b"\r\n".join([f"{method} {path} {version}".encode("latin-1"), *kept,
                                  b"Connection: close", b"", b""]) + body
        if target is None:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            raise ProtocolViolation(f"bad CONNECT target {uri[:80]!r}")
        stream = self._open(target, name)
        if isinstance(stream, StreamOpenError):
            message = (str(stream) or "error").encode("utf-8", errors="replace")[:200]
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(message) + 1).encode()
                         + b"\r\n\r\n" + message + b"\n")
            return
        try:
            if method.upper() == "CONNECT":
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if first:
                stream.sendall(first)
            conn.settimeout(None)
            relay_stream(stream, conn, name=f"{name} {target}")
        finally:
            stream.close()
