"""anytls_ref.socksaddr — spec "Client › Proxy": the target address of a stream (RFC 1928 §5).

Theory of operation: "after each Stream is opened, the client sends the target address of the
proxy request in SocksAddr format", at the start of the stream's data:

    | ATYP | address                                       | port              |
    | 0x01 | 4 bytes IPv4                                  | Big-Endian uint16 |
    | 0x03 | length uint8 + that many bytes of domain name |                   |
    | 0x04 | 16 bytes IPv6                                 |                   |

``decode_socksaddr`` is incremental: it returns NEED_DATA until the whole address is there.
No name is resolved here; the host stays a string (an IP literal or a domain name).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .frame import NEED_DATA, Incomplete

ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04
_PORT = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class SocksAddr:
    host: str  #: dotted IPv4, IPv6 without brackets, or a domain name
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def encode_socksaddr(addr: SocksAddr) -> bytes:
    if not 0 <= addr.port <= 0xFFFF:
        raise LocalProtocolError(f"port {addr.port} out of range")
    try:
        ip = ipaddress.ip_address(addr.host)
    except ValueError:
        name = _encode_name(addr.host)
        return bytes((ATYP_DOMAIN, len(name))) + name + _PORT.pack(addr.port)
    if ip.version == 4:
        return bytes((ATYP_IPV4,)) + ip.packed + _PORT.pack(addr.port)
    return bytes((ATYP_IPV6,)) + ip.packed + _PORT.pack(addr.port)


def _encode_name(host: str) -> bytes:
    """A domain name's wire bytes (IDNA for non-ASCII names), 1..255 of them."""
    try:
        name = host.encode() if host.isascii() else host.encode("idna")
    except UnicodeError:
        raise LocalProtocolError(f"domain name {host!r} cannot be encoded") from None
    if not 0 < len(name) <= 255:
        raise LocalProtocolError(f"domain name {host!r} must be 1..255 bytes")
    return name


def decode_socksaddr(data: bytes) -> tuple[SocksAddr, int] | Incomplete:
    """(address, bytes consumed), or NEED_DATA. Raises RemoteProtocolError for a bad address."""
    if not data:
        return NEED_DATA
    atyp = data[0]
    if atyp == ATYP_IPV4:
        start, end = 1, 1 + 4
    elif atyp == ATYP_IPV6:
        start, end = 1, 1 + 16
    elif atyp == ATYP_DOMAIN:
        if len(data) < 2:
            return NEED_DATA
        start, end = 2, 2 + data[1]
    else:
        raise RemoteProtocolError(f"unknown SocksAddr address type 0x{atyp:02x}")
    if len(data) < end + 2:
        return NEED_DATA
    raw = bytes(data[start:end])
    if atyp == ATYP_IPV4:
        host = str(ipaddress.IPv4Address(raw))
    elif atyp == ATYP_IPV6:
        host = _ipv6_host(raw)
    else:
        host = _domain_host(raw)
    (port,) = _PORT.unpack_from(data, end)
    return SocksAddr(host, port), end + 2


def _ipv6_host(packed: bytes) -> str:
    ip = ipaddress.IPv6Address(packed)
    # Go unwraps IPv4-mapped IPv6 addresses (peers.md §3)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)


def _domain_host(raw: bytes) -> str:
    if not raw:
        raise RemoteProtocolError("empty domain name in SocksAddr")
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError("domain name in SocksAddr is not ASCII") from None
    if not name.isprintable() or any(c in name for c in " /\\"):
        raise RemoteProtocolError(f"domain name {name!r} in SocksAddr is malformed")
    return name
