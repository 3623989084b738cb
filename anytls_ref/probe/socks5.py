"""A minimal SOCKS5 client (RFC 1928): no authentication, CONNECT only.

``probe client --socks HOST:PORT`` drives the client under test through its local SOCKS5 port;
this is all it needs (the package does not depend on PySocks).
"""

from __future__ import annotations

import socket
import struct

from ..net.relay import recv_exactly
from ..socksaddr import SocksAddr, encode_socksaddr

#: RFC 1928 §6 reply codes, for messages
REPLIES = {1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable",
           4: "host unreachable", 5: "connection refused", 6: "TTL expired",
           7: "command not supported", 8: "address type not supported"}


class Socks5Error(Exception):
    """The proxy answered CONNECT with a failure (``code``), or spoke something else."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    return recv_exactly(sock, n, error=Socks5Error, what=" of the proxy's handshake")


def socks5_connect(proxy: tuple[str, int], target: tuple[str, int], *,
                   timeout: float = 5.0) -> socket.socket:
    """A socket connected to ``target`` through the SOCKS5 proxy at ``proxy``.

    Raises Socks5Error for a failure reply, OSError when the proxy is unreachable or resets.
    The socket keeps ``timeout`` for later reads.
    """
    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\x05\x01\x00")  # version 5, one method: no authentication
        if _recv_exactly(sock, 2) != b"\x05\x00":
            raise Socks5Error("the proxy refused the no-authentication method")
        sock.sendall(b"\x05\x01\x00" + encode_socksaddr(SocksAddr(*target)))  # CONNECT
        version, reply, _, atyp = _recv_exactly(sock, 4)
        if version != 5:
            raise Socks5Error(f"not a SOCKS5 reply (version {version})")
        if reply != 0:
            raise Socks5Error(f"SOCKS5 reply {reply:#04x} ({REPLIES.get(reply, 'unknown')})",
                              code=reply)
        # the bound address: IPv4, a name, or IPv6, then a port
        length = {1: 4, 4: 16}.get(atyp)
        if length is None:
            length = _recv_exactly(sock, 1)[0]
        _recv_exactly(sock, length + struct.calcsize(">H"))
        return sock
    except BaseException:
        sock.close()
        raise
