"""The client's local listener: SOCKS5 (RFC 1928) and HTTP proxy on one port.

The first byte tells them apart: 0x05 is SOCKS5; an ASCII letter starts an HTTP request
(``CONNECT host:port`` or an absolute-URI request such as ``GET http://host/``). Anything else
is closed with a log line. Each accepted connection gets one thread, which opens an anytls
stream through the Client and then relays.
"""

from __future__ import annotations

import base64
import errno
import hmac
import ipaddress
import logging
import socket
import struct
import time

from ..errors import AnyTLSError, Reason, StreamOpenError
from ..reuse import fin_linger
from ..socksaddr import SocksAddr, encode_socksaddr
from .client import Client
from .diagnose import connect_failure, stream_failure
from .httpproxy import REASONS, BadRequest, parse_head, read_request, response
from .listener import ThreadedListener
from .relay import relay_stream
from .sockutil import recv_exactly as _recv_exactly
from .sockutil import set_nodelay
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

SOCKS_USERNAME_PASSWORD = 0x02
METHOD_NAMES = {SOCKS_NO_AUTH: "'no authentication'",
                SOCKS_USERNAME_PASSWORD: "'username/password' (--local-auth is on)"}
#: how long the application has for its SOCKS5 handshake or HTTP request head
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


class LocalAuth:
    """``--local-auth USER:PASS``: who may use the local proxy port. SOCKS5 clients log in with
    username/password (RFC 1929), HTTP clients with ``Proxy-Authorization: Basic``. More
    users (``others``: (username, password) pairs) come from a config file's list. Every pair
    is compared, each part in constant time."""

    def __init__(self, username: str, password: str, *others: tuple[str, str]) -> None:
        self._credentials = [(name.encode("utf-8"), secret.encode("utf-8"))
                             for name, secret in ((username, password), *others)]

    def matches(self, username: bytes, password: bytes) -> bool:
        # | and & rather than or and and: every comparison always runs
        found = False
        for name, secret in self._credentials:
            found |= hmac.compare_digest(username, name) & hmac.compare_digest(password, secret)
        return found

    def basic_matches(self, authorization: str | None) -> bool:
        """``Basic base64(user:pass)`` (RFC 7617) with the right credentials?"""
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            return False
        username, sep, password = decoded.partition(b":")
        return bool(sep) and self.matches(username, password)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    return _recv_exactly(sock, n, error=ProtocolViolation, what=" of the handshake")


class ProxyInbound(ThreadedListener):
    """SOCKS5 + HTTP proxy listener feeding a Client, which it owns: ``close()`` closes the
    client too (a handler waiting in open_stream then fails at once) and joins everything."""

    thread_name = "anytls-in"

    def __init__(self, listen: tuple[str, int], client: Client, *,
                 auth: LocalAuth | None = None, max_connections: int | None = None) -> None:
        super().__init__(listen, max_connections=max_connections)
        self.client = client
        self.auth = auth

    def start(self) -> None:
        super().start()
        log.debug("SOCKS5/HTTP proxy listening on %s:%d", *self.address)
        if self.auth is None and not ipaddress.ip_address(self.address[0]).is_loopback:
            log.warning("the SOCKS5/HTTP port %s:%d is open to other machines without "
                        "--local-auth: anyone who reaches it can use your server",
                        *self.address)

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

    def _open(self, target: SocksAddr, name: str,
              first_data: bytes = b"") -> Stream | StreamOpenError:
        """A stream to ``target``, or why there is none."""
        try:
            return self.client.open_stream(target, first_data=first_data)
        except StreamOpenError as exc:
            log.info("%s: %s: %s", name, target, stream_failure(exc, exc.reason))
            return exc
        except (OSError, AnyTLSError) as exc:
            log.warning("%s: %s", name, connect_failure(exc, self.client.config.server))
            return server_failure(exc)

    # ---- SOCKS5 ----

    def _socks5(self, conn: socket.socket, name: str) -> None:
        _, n_methods = recv_exactly(conn, 2)
        methods = recv_exactly(conn, n_methods)
        wanted = SOCKS_NO_AUTH if self.auth is None else SOCKS_USERNAME_PASSWORD
        if wanted not in methods:
            conn.sendall(bytes((SOCKS_VERSION, SOCKS_NO_ACCEPTABLE)))
            raise ProtocolViolation(f"SOCKS5 client offers no {METHOD_NAMES[wanted]} method")
        conn.sendall(bytes((SOCKS_VERSION, wanted)))
        if self.auth is not None:
            self._socks5_login(conn)
        version, command, _, atyp = recv_exactly(conn, 4)
        if version != SOCKS_VERSION:
            raise ProtocolViolation(f"SOCKS request version {version}")
        target = self._socks_addr(conn, atyp)
        if target is None:
            self._socks_reply(conn, REP_ADDRESS_TYPE_NOT_SUPPORTED)
            raise ProtocolViolation(f"SOCKS5 address type {atyp} not supported")
        if not target.host:  # no name to resolve: as a name that does not resolve
            self._socks_reply(conn, REP_HOST_UNREACHABLE)
            raise ProtocolViolation("SOCKS5 target with an empty domain name")
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
            self._relay(stream, conn, f"{name} {target}")
        finally:
            stream.close()

    def _socks5_login(self, conn: socket.socket) -> None:
        """RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD; answered VER 1, STATUS (0: success), and
        "If the server returns a `failure' (STATUS value other than X'00') status, it MUST
        close the connection." (the caller closes it)"""
        version, length = recv_exactly(conn, 2)
        username = recv_exactly(conn, length)
        (length,) = recv_exactly(conn, 1)
        password = recv_exactly(conn, length)
        ok = version == 0x01 and self.auth.matches(username, password)
        conn.sendall(bytes((0x01, 0x00 if ok else 0x01)))
        if not ok:
            raise ProtocolViolation("SOCKS5 username/password rejected")

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
        try:
            head, rest = read_request(conn, time.monotonic() + HANDSHAKE_TIMEOUT)
            request = parse_head(head, rest)
        except BadRequest as exc:
            conn.sendall(response(exc.status, REASONS[exc.status], str(exc)))
            raise ProtocolViolation(f"HTTP {exc.status}: {exc}") from None
        if self.auth is not None and not self.auth.basic_matches(request.authorization):
            conn.sendall(response(407, REASONS[407], "proxy authentication required",
                                  headers=b'Proxy-Authenticate: Basic realm="anytls-ref"\r\n'))
            raise ProtocolViolation("HTTP proxy request without the right credentials (407)")
        # a request to pass on goes out with the stream and waits for its answer: a refused
        # target is still a 502 (version.waits_for_answer); a tunnel is answered at once
        first = b"" if request.tunnel else request.first
        stream = self._open(request.target, name, first)
        if isinstance(stream, StreamOpenError):
            conn.sendall(response(502, REASONS[502], str(stream) or "error"))
            return
        try:
            if request.tunnel:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if request.first:
                    stream.sendall(request.first)
            conn.settimeout(None)
            self._relay(stream, conn, f"{name} {request.target}")
        finally:
            stream.close()

    @staticmethod
    def _relay(stream: Stream, conn: socket.socket, name: str) -> None:
        """Relay; after the application's EOF, linger for the server's answer (D40). A stream
        the server refused after the application was told it was open ends here: say why."""
        session = stream.session
        answered = relay_stream(stream, conn, name=name,
                                linger=fin_linger(session.server_answers_fin))
        if answered is not None:
            session.server_answers_fin = answered
        if stream.answer is not None and stream.answer.reason is not None:
            log.info("%s: closed: %s", name, stream_failure(stream.answer.text,
                                                            stream.answer.reason))
