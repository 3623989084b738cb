"""Spec "Client › Proxy" / "Server › Proxy": UDP over TCP, sing-box udp-over-tcp version 2."""

from __future__ import annotations

import pytest

from anytls_ref.errors import LocalProtocolError, RemoteProtocolError
from anytls_ref.frame import NEED_DATA
from anytls_ref.socksaddr import SocksAddr, encode_socksaddr
from anytls_ref.uot import (
    MAX_DATAGRAM,
    UOT_LEGACY_MAGIC,
    UOT_V2_MAGIC,
    UotRequest,
    decode_packet,
    decode_uot_request,
    encode_packet,
    encode_packet_addr,
    encode_uot_request,
)

V4 = SocksAddr("192.0.2.1", 53)
V6 = SocksAddr("2001:db8::1", 53)
NAME = SocksAddr("dns.example", 53)


def test_magic_names():
    assert UOT_V2_MAGIC == "sp.v2.udp-over-tcp.arpa"
    assert UOT_LEGACY_MAGIC == "sp.udp-over-tcp.arpa"


@pytest.mark.parametrize("is_connect, first", [(False, 0), (True, 1)])
def test_request_is_is_connect_then_a_socksaddr(is_connect, first):
    request = UotRequest(is_connect, NAME)
    raw = encode_uot_request(request)
    assert raw == bytes([first]) + encode_socksaddr(NAME)
    assert decode_uot_request(raw + b"rest") == (request, len(raw))


def test_request_is_connect_is_any_non_zero_byte():
    raw = b"\x07" + encode_socksaddr(V4)
    assert decode_uot_request(raw) == (UotRequest(True, V4), len(raw))


def test_request_truncations_need_data_and_bad_atyp_is_an_error():
    raw = encode_uot_request(UotRequest(False, V6))
    for cut in range(len(raw)):
        assert decode_uot_request(raw[:cut]) is NEED_DATA, cut
    with pytest.raises(RemoteProtocolError):
        decode_uot_request(b"\x00\x02" + bytes(8))


def test_packet_families_are_00_01_02_not_socksaddr_01_04_03():
    assert encode_packet_addr(V4) == bytes.fromhex("00 c0000201 0035")
    assert encode_packet_addr(V6) == bytes.fromhex("01 20010db8000000000000000000000001 0035")
    assert encode_packet_addr(NAME) == bytes([0x02, 11]) + b"dns.example" + b"\x00\x35"
    assert encode_socksaddr(V4)[0] == 0x01 and encode_socksaddr(V6)[0] == 0x04
    assert encode_socksaddr(NAME)[0] == 0x03


@pytest.mark.parametrize("addr", [V4, V6, NAME], ids=str)
def test_address_mode_packet_round_trip(addr):
    raw = encode_packet(b"query", addr)
    assert raw == encode_packet_addr(addr) + b"\x00\x05query"
    assert decode_packet(raw + b"next", connect=False) == (addr, b"query", len(raw))


def test_connect_mode_packet_is_length_and_payload():
    raw = encode_packet(b"query", None)
    assert raw == b"\x00\x05query"
    assert decode_packet(raw, connect=True) == (None, b"query", len(raw))


@pytest.mark.parametrize("raw, connect", [
    (encode_packet(b"abc", V4), False),
    (encode_packet(b"abc", V6), False),
    (encode_packet(b"abc", NAME), False),
    (encode_packet(b"abc", None), True),
], ids=["v4", "v6", "name", "connect"])
def test_every_packet_truncation_needs_data(raw, connect):
    for cut in range(len(raw)):
        assert decode_packet(raw[:cut], connect=connect) is NEED_DATA, cut


def test_empty_datagram_round_trips():
    assert decode_packet(encode_packet(b"", V4), connect=False) == (V4, b"", 9)


def test_ipv4_mapped_source_is_unwrapped():
    raw = bytes.fromhex("01 00000000000000000000ffffc0000201 0035 0001 78")
    assert decode_packet(raw, connect=False) == (V4, b"x", len(raw))


@pytest.mark.parametrize("family", [0x03, 0x04, 0xFF])
def test_unknown_packet_family_is_a_remote_protocol_error(family):
    with pytest.raises(RemoteProtocolError):
        decode_packet(bytes([family]) + bytes(10), connect=False)


def test_empty_domain_in_a_packet_is_a_remote_protocol_error():
    with pytest.raises(RemoteProtocolError):
        decode_packet(b"\x02\x00\x00\x35\x00\x00", connect=False)


def test_encode_refuses_an_oversized_datagram():
    assert len(encode_packet(bytes(MAX_DATAGRAM), None)) == MAX_DATAGRAM + 2
    with pytest.raises(LocalProtocolError):
        encode_packet(bytes(MAX_DATAGRAM + 1), None)


@pytest.mark.parametrize("host", ["", "a" * 256, "ü..example"])
def test_encode_refuses_a_name_that_cannot_be_sent(host):
    with pytest.raises(LocalProtocolError):
        encode_packet_addr(SocksAddr(host, 53))
