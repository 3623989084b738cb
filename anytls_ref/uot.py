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

import struct
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .frame import NEED_DATA, Incomplete
from .socksaddr import (
    AddressTypes,
    SocksAddr,
    decode_address,
    decode_socksaddr,
    encode_address,
    encode_socksaddr,
)

UOT_V2_MAGIC = "sp.v2.udp-over-tcp.arpa"
UOT_LEGACY_MAGIC = "sp.udp-over-tcp.arpa"
FAMILY_IPV4 = 0x00
FAMILY_IPV6 = 0x01
FAMILY_DOMAIN = 0x02
_U16 = struct.Struct(">H")
MAX_DATAGRAM = 0xFFFF


def _packet_host(raw: bytes) -> str:
    """A per-packet domain name: read leniently (bytes that are not ASCII are replaced), but
    an empty one is an error."""
    if not raw:
        raise RemoteProtocolError("empty domain name in UoT packet")
    return raw.decode("ascii", errors="replace")


#: The per-packet address: SocksAddr's layout with sing's AddrParser family bytes.
#: IPv4-mapped IPv6 sources come back as IPv4, as in SocksAddr (peers.md §3).
PACKET_ADDRESS = AddressTypes(FAMILY_IPV4, FAMILY_DOMAIN, FAMILY_IPV6, "UoT address family",
                              _packet_host)


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
    return encode_address(addr, PACKET_ADDRESS)


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
        result = decode_address(data, PACKET_ADDRESS)
        if result is NEED_DATA:
            return NEED_DATA
        addr, pos = result
    if len(data) < pos + 2:
        return NEED_DATA
    (length,) = _U16.unpack_from(data, pos)
    pos += 2
    if len(data) < pos + length:
        return NEED_DATA
    return addr, bytes(data[pos : pos + length]), pos + length
