"""A minimal SOCKS5 UDP ASSOCIATE client (RFC 1928 §4, §7) for the interop UDP scenario.

PySocks announces its UDP source as the *domain name* "0" in the UDP ASSOCIATE request; the Go
peers' SOCKS5 server (sing) rejects that name without reading the port, so the association dies
at once (peers.md §3: keep names RFC 1123-clean). This client says 0.0.0.0:0, as RFC 1928
allows ("if the client is not in possession of the information ... MUST use ... all zeros").
"""

from __future__ import annotations

import socket
import struct

from anytls_ref.frame import NEED_DATA
from anytls_ref.net.relay import recv_exactly
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr


class SocksUdpClient:
    def __init__(self, proxy: tuple[str, int], timeout: float = 5.0) -> None:
        self.control = socket.create_connection(proxy, timeout=timeout)
        self.control.sendall(b"\x05\x01\x00")
        if self._recv(2) != b"\x05\x00":
            raise OSError("SOCKS5 proxy refused the no-authentication method")
        self.control.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
        head = self._recv(4)
        if head[1] != 0:
            raise OSError(f"UDP ASSOCIATE refused with SOCKS5 code {head[1]}")
        rest = self._recv({1: 4, 4: 16}.get(head[3], 0) + 2 if head[3] != 3 else
                          self._recv(1)[0] + 2)
        (port,) = struct.unpack(">H", rest[-2:])
        # the relay is on the proxy's host whatever address the reply names (often 0.0.0.0)
        self.relay = (proxy[0], port)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(timeout)

    def _recv(self, n: int) -> bytes:
        return recv_exactly(self.control, n, error=OSError, what=" of the SOCKS5 reply")

    def sendto(self, payload: bytes, target: tuple[str, int]) -> None:
        header = b"\x00\x00\x00" + encode_socksaddr(SocksAddr(*target))
        self.udp.sendto(header + payload, self.relay)

    def recvfrom(self) -> tuple[bytes, tuple[str, int]]:
        datagram, _ = self.udp.recvfrom(65535)
        result = decode_socksaddr(datagram[3:])
        if result is NEED_DATA:
            raise OSError("truncated SOCKS5 UDP header")
        addr, used = result
        return datagram[3 + used:], (addr.host, addr.port)

    def close(self) -> None:
        self.udp.close()
        self.control.close()
