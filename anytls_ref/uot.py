"""anytls_ref.uot — spec "Client › Proxy" / "Server › Proxy": UDP over TCP (sing-box UoT v2).

Theory of operation: "For UDP, sing-box's udp-over-tcp 2 protocol is now used, which is
equivalent to proxying the TCP request `sp.v2.udp-over-tcp.arpa`." A stream to that magic
address starts with a request, then carries datagrams in both directions:

    request:  | isConnect (1 byte, non-zero = true) | destination as SocksAddr (01/03/04) |
    packet, isConnect = 0:  | address | port u16 BE | length u16 BE | payload |
    packet, isConnect = 1:  | length u16 BE | payload |

The per-packet address uses *different* family bytes from SocksAddr (sing's AddrParser):
``00`` IPv4 (4 bytes), ``01`` IPv6 (16 bytes), ``02`` domain (length u8 + name). The legacy
``sp.udp-over-tcp.arpa`` (version 1) has no request and always uses the address form.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .frame import NEED_DATA, Incomplete
from .socksaddr import (
    SocksAddr,
    _encode_name,
    _ipv6_host,
    decode_socksaddr,
    encode_socksaddr,
)

UOT_V2_MAGIC = "sp.v2.udp-over-tcp.arpa"
UOT_LEGACY_MAGIC = "sp.udp-over-tcp.arpa"
FAMILY_IPV4 = 0x00
FAMILY_IPV6 = 0x01
FAMILY_DOMAIN = 0x02
_U16 = struct.Struct(">H")
MAX_DATAGRAM = 0xFFFF


@dataclass(frozen=True, slots=True)
class UotRequest:
    is_connect: bool  #: True: every packet goes to ``destination`` and carries no address
    destination: SocksAddr


def encode_uot_request(request: UotRequest) -> bytes:
    return bytes((1 if request.is_connect else 0,)) + encode_socksaddr(request.destination)


def decode_uot_request(data: bytes) -> tuple[UotRequest, int] | Incomplete:
    if not data:
        return NEED_DATA
    result = decode_socksaddr(data[1:])
    if result is NEED_DATA:
        return NEED_DATA
    addr, used = result
    return UotRequest(data[0] != 0, addr), 1 + used


def encode_packet_addr(addr: SocksAddr) -> bytes:
    """An address in the per-packet (AddrParser) form, port included."""
    try:
        ip = ipaddress.ip_address(addr.host)
    except ValueError:
        name = _encode_name(addr.host)
        head = bytes((FAMILY_DOMAIN, len(name))) + name
    else:
        head = bytes((FAMILY_IPV4 if ip.version == 4 else FAMILY_IPV6,)) + ip.packed
    return head + _U16.pack(addr.port)


def encode_packet(payload: bytes, addr: SocksAddr | None) -> bytes:
    """One datagram: with ``addr`` in address mode, without it in connect mode."""
    if len(payload) > MAX_DATAGRAM:
        raise LocalProtocolError(f"datagram of {len(payload)} bytes exceeds {MAX_DATAGRAM}")
    head = encode_packet_addr(addr) if addr is not None else b""
    return head + _U16.pack(len(payload)) + payload


def decode_packet(
    data: bytes, *, connect: bool
) -> tuple[SocksAddr | None, bytes, int] | Incomplete:
    """(address or None, payload, bytes consumed), or NEED_DATA. Bad family → RemoteProtocolError."""
    pos = 0
    addr = None
    if not connect:
        if not data:
            return NEED_DATA
        family = data[0]
        if family == FAMILY_IPV4:
            start, end = 1, 5
        elif family == FAMILY_IPV6:
            start, end = 1, 17
        elif family == FAMILY_DOMAIN:
            if len(data) < 2:
                return NEED_DATA
            start, end = 2, 2 + data[1]
            if data[1] == 0:
                raise RemoteProtocolError("empty domain name in UoT packet")
        else:
            raise RemoteProtocolError(f"unknown UoT address family 0x{family:02x}")
        if len(data) < end + 2:
            return NEED_DATA
        raw = bytes(data[start:end])
        if family == FAMILY_IPV4:
            host = str(ipaddress.IPv4Address(raw))
        elif family == FAMILY_IPV6:
            host = _ipv6_host(raw)  # IPv4-mapped sources come back as IPv4 (peers.md §3)
        else:
            host = raw.decode("ascii", errors="replace")
        (port,) = _U16.unpack_from(data, end)
        addr = SocksAddr(host, port)
        pos = end + 2
    if len(data) < pos + 2:
        return NEED_DATA
    (length,) = _U16.unpack_from(data, pos)
    pos += 2
    if len(data) < pos + length:
        return NEED_DATA
    return addr, bytes(data[pos : pos + length]), pos + length
