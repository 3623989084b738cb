"""anytls_ref.socksaddr — spec "Client › Proxy": the target address of a stream (RFC 1928 §5).

Theory of operation: "after each Stream is opened, the client sends the target address of the
proxy request in SocksAddr format", at the start of the stream's data:

    | ATYP | address                                       | port              |
    | 0x01 | 4 bytes IPv4                                  | Big-Endian uint16 |
    | 0x03 | length uint8 + that many bytes of domain name |                   |
    | 0x04 | 16 bytes IPv6                                 |                   |

``decode_socksaddr`` is incremental: it returns NEED_DATA until the whole address is there.
No name is resolved here; the host stays a string (an IP literal or a domain name). The
per-packet address of UDP over TCP is the same format with other type bytes (``AddressTypes``):
uot.py uses the same ``encode_address`` and ``decode_address``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class AddressTypes:
    """The type bytes of one address format, and how its domain names are read.

    SocksAddr and the per-packet address of UDP over TCP (uot.py) differ only in these; one
    encoder and one decoder serve both.
    """

    ipv4: int
    domain: int
    ipv6: int
    what: str  #: the type byte's name in errors, e.g. "SocksAddr address type"
    read_name: Callable[[bytes], str]  #: a domain name's bytes → host; RemoteProtocolError


def encode_socksaddr(addr: SocksAddr) -> bytes:
    if not 0 <= addr.port <= 0xFFFF:
        raise LocalProtocolError(f"port {addr.port} out of range")
    return encode_address(addr, SOCKS_ADDRESS)


def encode_address(addr: SocksAddr, types: AddressTypes) -> bytes:
    """``addr`` as type byte, address and port, with the type bytes of ``types``."""
    try:
        ip = ipaddress.ip_address(addr.host)
    except ValueError:
        name = _encode_name(addr.host)
        return bytes((types.domain, len(name))) + name + _PORT.pack(addr.port)
    kind = types.ipv4 if ip.version == 4 else types.ipv6
    return bytes((kind,)) + ip.packed + _PORT.pack(addr.port)


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
    return decode_address(data, SOCKS_ADDRESS)


def decode_address(data: bytes, types: AddressTypes) -> tuple[SocksAddr, int] | Incomplete:
    """An address with the type bytes of ``types``: (address, bytes consumed), or NEED_DATA.
    Raises RemoteProtocolError for an unknown type or a name ``types.read_name`` refuses."""
    if not data:
        return NEED_DATA
    kind = data[0]
    if kind in (types.ipv4, types.ipv6):
        start, end = 1, 1 + (4 if kind == types.ipv4 else 16)
    elif kind == types.domain:
        if len(data) < 2:
            return NEED_DATA
        start, end = 2, 2 + data[1]
    else:
        raise RemoteProtocolError(f"unknown {types.what} 0x{kind:02x}")
    if len(data) < end + 2:
        return NEED_DATA
    raw = bytes(data[start:end])
    if kind == types.ipv4:
        host = str(ipaddress.IPv4Address(raw))
    elif kind == types.ipv6:
        host = _ipv6_host(raw)
    else:
        host = types.read_name(raw)
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


SOCKS_ADDRESS = AddressTypes(ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6, "SocksAddr address type",
                             _domain_host)
