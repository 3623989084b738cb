"""A SOCKS5 client (RFC 1928): CONNECT and UDP ASSOCIATE, with the stdlib only.

It drives a client's local SOCKS5 port: the demo, the probe (``probe client --socks``), the
interop checks and the benchmark all use it (the package does not depend on PySocks). Only "no
authentication" is offered; RFC 1929 username/password would be one more method in
``_negotiate``, with its sub-negotiation there.

    with socks5_connect(("127.0.0.1", 1080), ("127.0.0.1", 8080)) as sock:
        sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")

    with Socks5Udp(("127.0.0.1", 1080)) as udp:
        udp.sendto(b"query", ("127.0.0.1", 53))
        payload, source = udp.recvfrom()
"""

from __future__ import annotations

import socket

from ..errors import RemoteProtocolError
from ..socksaddr import (
    ATYP_DOMAIN,
    ATYP_IPV4,
    ATYP_IPV6,
    SocksAddr,
    decode_socksaddr,
    encode_socksaddr,
)
from .sockutil import recv_exactly, set_nodelay
from .udp import parse_socks_udp, socks_udp_header

SOCKS_VERSION = 5
NO_AUTHENTICATION = 0x00
CONNECT, UDP_ASSOCIATE = 0x01, 0x03
#: RFC 1928 §6 reply codes, for messages
REPLIES = {1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable",
           4: "host unreachable", 5: "connection refused", 6: "TTL expired",
           7: "command not supported", 8: "address type not supported"}
#: A reply with an IPv4 bound address, what every proxy we drive sends: read in one recv. No
#: reply is shorter but one naming a bound host of under 3 bytes, which is refused.
SHORTEST_REPLY = 10
#: a UDP ASSOCIATE names no source (RFC 1928: "all zeros"); PySocks' domain name "0" here makes
#: the Go peers' SOCKS5 server (sing) drop the association (peers.md §3)
UNKNOWN_SOURCE = SocksAddr("0.0.0.0", 0)


class Socks5Error(ConnectionError):
    """The proxy answered with a failure (``code``, RFC 1928 §6), or spoke something else."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _recv(sock: socket.socket, n: int) -> bytes:
    return recv_exactly(sock, n, error=Socks5Error, what=" of the proxy's handshake")


def _negotiate(sock: socket.socket) -> None:
    """Method selection (RFC 1928 §3): "no authentication", the only method offered."""
    sock.sendall(bytes((SOCKS_VERSION, 1, NO_AUTHENTICATION)))
    if _recv(sock, 2) != bytes((SOCKS_VERSION, NO_AUTHENTICATION)):
        raise Socks5Error("the proxy refused the no-authentication method")


def _reply_size(head: bytes) -> int:
    """The size of the whole reply, from its first five bytes."""
    atyp = head[3]
    if atyp == ATYP_IPV4:
        return 4 + 4 + 2
    if atyp == ATYP_IPV6:
        return 4 + 16 + 2
    if atyp == ATYP_DOMAIN:
        return 4 + 1 + head[4] + 2
    raise Socks5Error(f"unknown address type {atyp:#04x} in the SOCKS5 reply")


def socks5_request(sock: socket.socket, command: int, target: SocksAddr) -> SocksAddr:
    """The handshake on a connected ``sock``: methods, then ``command`` for ``target``.

    Returns the bound address of a success reply; raises Socks5Error for a failure reply or
    anything that is not SOCKS5.
    """
    _negotiate(sock)
    sock.sendall(bytes((SOCKS_VERSION, command, 0)) + encode_socksaddr(target))
    reply = _recv(sock, SHORTEST_REPLY)
    version, code = reply[0], reply[1]
    if version != SOCKS_VERSION:
        raise Socks5Error(f"not a SOCKS5 reply (version {version})")
    if code != 0:
        raise Socks5Error(f"SOCKS5 reply {code:#04x} ({REPLIES.get(code, 'unknown')})",
                          code=code)
    size = _reply_size(reply)
    if size < SHORTEST_REPLY:  # what was read past the reply belongs to the connection
        raise Socks5Error("the SOCKS5 reply names a bound host of under 3 bytes (unsupported)")
    reply += _recv(sock, size - SHORTEST_REPLY)
    try:
        bound, _ = decode_socksaddr(reply[3:])
    except RemoteProtocolError as exc:
        raise Socks5Error(f"bad bound address in the SOCKS5 reply: {exc}") from None
    return bound


def socks5_connect(proxy: tuple[str, int], target: tuple[str, int], *,
                   timeout: float = 5.0) -> socket.socket:
    """A socket connected to ``target`` through the SOCKS5 proxy at ``proxy`` (CONNECT).

    Raises Socks5Error for a failure reply, OSError when the proxy is unreachable or resets.
    The socket keeps ``timeout`` for later reads.
    """
    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        set_nodelay(sock)
        socks5_request(sock, CONNECT, SocksAddr(*target))
    except BaseException:
        sock.close()
        raise
    return sock


class Socks5Udp:
    """A UDP association through the SOCKS5 proxy at ``proxy`` (UDP ASSOCIATE, RFC 1928 §7).

    Datagrams go from 127.0.0.1 to the relay port the reply names, on the proxy's host whatever
    address the reply gives (often 0.0.0.0). The association lasts as long as its control
    connection: ``close()`` ends both.
    """

    def __init__(self, proxy: tuple[str, int], *, timeout: float = 5.0) -> None:
        self.control = socket.create_connection(proxy, timeout=timeout)
        try:
            bound = socks5_request(self.control, UDP_ASSOCIATE, UNKNOWN_SOURCE)
            self.relay = (proxy[0], bound.port)
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.udp.settimeout(timeout)
        except BaseException:
            self.control.close()
            raise

    def __enter__(self) -> Socks5Udp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sendto(self, payload: bytes, target: tuple[str, int]) -> None:
        self.udp.sendto(socks_udp_header(SocksAddr(*target)) + payload, self.relay)

    def recvfrom(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and where it came from; Socks5Error for a malformed one."""
        datagram, _ = self.udp.recvfrom(65535)
        try:
            parsed = parse_socks_udp(datagram)
        except RemoteProtocolError as exc:
            raise Socks5Error(str(exc)) from None
        if parsed is None:
            raise Socks5Error("a fragmented SOCKS5 UDP datagram")
        source, payload = parsed
        return payload, (source.host, source.port)

    def close(self) -> None:
        self.udp.close()
        self.control.close()
