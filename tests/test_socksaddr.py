"""Spec "Client › Proxy": the stream's target address in SocksAddr form (RFC 1928 §5)."""

from __future__ import annotations

import pytest

from anytls_ref.errors import LocalProtocolError, RemoteProtocolError
from anytls_ref.frame import NEED_DATA
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr

CASES = [
    (SocksAddr("192.0.2.1", 443), "01 c0000201 01bb"),
    (SocksAddr("2001:db8::1", 80), "04 20010db8000000000000000000000001 0050"),
    (SocksAddr("example.com", 8080), "03 0b 6578616d706c652e636f6d 1f90"),
    (SocksAddr("sp.v2.udp-over-tcp.arpa", 0), "03 17" + b"sp.v2.udp-over-tcp.arpa".hex() + "0000"),
]


@pytest.mark.parametrize("addr, wire", CASES, ids=lambda x: str(x)[:20])
def test_round_trip(addr, wire):
    raw = bytes.fromhex(wire)
    assert encode_socksaddr(addr) == raw
    assert decode_socksaddr(raw) == (addr, len(raw))


def test_decode_reports_the_bytes_used_and_ignores_what_follows():
    raw = encode_socksaddr(SocksAddr("example.com", 80))
    assert decode_socksaddr(raw + b"GET / HTTP/1.1") == (SocksAddr("example.com", 80), len(raw))


@pytest.mark.parametrize("addr, wire", CASES, ids=lambda x: str(x)[:20])
def test_every_truncation_needs_data(addr, wire):
    raw = bytes.fromhex(wire)
    for cut in range(len(raw)):
        assert decode_socksaddr(raw[:cut]) is NEED_DATA, cut


def test_ipv4_mapped_ipv6_is_unwrapped():
    raw = bytes.fromhex("04 00000000000000000000ffffc0000201 01bb")
    assert decode_socksaddr(raw) == (SocksAddr("192.0.2.1", 443), len(raw))


@pytest.mark.parametrize("atyp", [0x00, 0x02, 0x05, 0xFF])
def test_unknown_address_type_is_a_remote_protocol_error(atyp):
    with pytest.raises(RemoteProtocolError, match="address type"):
        decode_socksaddr(bytes([atyp]) + bytes(10))


@pytest.mark.parametrize(
    "name", [b"", b"caf\xc3\xa9.example", b"a b", b"a/b", b"a\\b", b"bad\nname", b"\x00"])
def test_malformed_domain_names_are_rejected(name):
    # decisions.md D18: stricter than Go, which takes any bytes
    with pytest.raises(RemoteProtocolError):
        decode_socksaddr(bytes([0x03, len(name)]) + name + b"\x00\x50")


def test_domain_that_looks_like_an_ip_stays_the_same_host_string():
    raw = bytes([0x03, 7]) + b"1.2.3.4" + b"\x00\x50"
    assert decode_socksaddr(raw)[0] == SocksAddr("1.2.3.4", 80)


def test_encode_chooses_the_type_from_the_host():
    assert encode_socksaddr(SocksAddr("10.0.0.1", 1))[0] == 0x01
    assert encode_socksaddr(SocksAddr("::1", 1))[0] == 0x04
    assert encode_socksaddr(SocksAddr("localhost", 1))[0] == 0x03


def test_encode_sends_non_ascii_names_as_idna():
    assert encode_socksaddr(SocksAddr("bücher.example", 80)) == (
        bytes([0x03, 21]) + b"xn--bcher-kva.example" + b"\x00\x50")


@pytest.mark.parametrize("addr", [SocksAddr("a", -1), SocksAddr("a", 65536), SocksAddr("", 80),
                                  SocksAddr("a" * 256, 80), SocksAddr("ü..example", 80)])
def test_encode_refuses_what_cannot_be_sent(addr):
    with pytest.raises(LocalProtocolError):
        encode_socksaddr(addr)


def test_str_brackets_ipv6():
    assert str(SocksAddr("::1", 80)) == "[::1]:80"
    assert str(SocksAddr("example.com", 80)) == "example.com:80"
