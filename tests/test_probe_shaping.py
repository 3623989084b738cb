"""anytls_ref/probe/shaping.py reads padding back from TLS records: it must accept everything
padding.Padder produces (for any scheme and payload) and reject what breaks a line's rules."""

from __future__ import annotations

import random

import pytest

from anytls_ref.frame import Command, encode_frame, encode_psh
from anytls_ref.padding import DEFAULT, Padder, parse_scheme, waste_frame
from anytls_ref.probe.client_script import PROBE_SCHEME
from anytls_ref.probe.shaping import check_write, check_writes, group_writes, view_records
from anytls_ref.settings import ClientSettings
from anytls_ref.socksaddr import SocksAddr, encode_socksaddr

TLS_RECORD = 16384
SCHEMES = {
    "default": DEFAULT,
    "probe": parse_scheme(PROBE_SCHEME),
    "custom": parse_scheme(b"stop=4\n0=77-77\n1=200-300\n2=100-200,c,300-400\n3=9-9"),
}


def packet_1() -> bytes:
    """Settings + SYN + PSH(address): what a client's first write after the authentication is."""
    settings = ClientSettings(3, "anytls-ref/0.1.0", DEFAULT.md5).encode()
    return (encode_frame(Command.SETTINGS, 0, settings) + encode_frame(Command.SYN, 1)
            + encode_psh(1, encode_socksaddr(SocksAddr("127.0.0.1", 10001))))


def as_tls_records(chunks: list[bytes]) -> list[bytes]:
    """Each TLS write becomes records of at most 16 KiB, as the server reads them."""
    return [chunk[i:i + TLS_RECORD] for chunk in chunks for i in range(0, len(chunk), TLS_RECORD)]


@pytest.mark.parametrize("name", SCHEMES)
def test_whatever_the_padder_writes_is_read_back_as_fitting(name):
    scheme = SCHEMES[name]
    for seed in range(200):
        rng = random.Random(seed)
        padder = Padder(scheme, rng)
        writes = [packet_1()] + [encode_psh(1, bytes(rng.choice([1, 9, 40, 300, 1200, 5000,
                                                                   40000])))
                                 for _ in range(rng.randrange(1, 12))]
        chunks = [record for write in writes for record in padder.records(write)]
        grouped = group_writes(view_records(as_tls_records(chunks)))
        assert len(grouped) == len(writes), f"seed {seed}"
        problems = [(n, sizes, p) for n, sizes, p in check_writes(grouped, scheme, 1) if p]
        assert problems == [], f"seed {seed}"


def views_of(*records: bytes):
    return view_records(list(records))


LINE_2 = DEFAULT.packets[2]  # 400-500,c,500-1000,c,...


def test_a_record_outside_its_range_is_named():
    payload = encode_psh(1, bytes(1200))
    assert check_write(views_of(payload[:450], payload[450:] + waste_frame(980 - 757 - 7)),
                       LINE_2) is None
    problem = check_write(views_of(payload[:350], payload[350:]), LINE_2)
    assert problem == "record 1 (350 B): outside 400-500"


def test_missing_padding_and_extra_records_are_named():
    line = (parse_scheme(b"stop=2\n1=100-200,300-400").packets[1])  # no check mark: pad on
    payload = encode_frame(Command.SYN, 1)  # 7 bytes
    full = [payload + waste_frame(150 - 7 - 7), waste_frame(350)]
    assert check_write(views_of(*full), line) is None
    assert check_write(views_of(full[0]), line) == \
        "record 2: missing (a padding record of 300-400 expected)"
    assert "after the line's entries" in check_write(views_of(*full, waste_frame(10)), line)


def test_padding_where_the_scheme_shapes_nothing_is_named():
    record = encode_psh(1, b"x") + waste_frame(20)
    assert check_write(views_of(record), None) == "padding in a write the scheme does not shape"


def test_a_check_mark_ends_the_write_once_the_payload_is_out():
    payload = encode_psh(1, bytes(100))  # 107 bytes: ends in record 1, topped up
    one = payload + waste_frame(450 - 107 - 7)
    assert check_write(views_of(one), LINE_2) is None
    assert "after the line's entries" in check_write(views_of(one, waste_frame(600)), LINE_2)


def test_records_split_inside_a_frame_header_are_walked():
    data = encode_psh(1, b"abc") + waste_frame(5)  # 10 + 12 bytes
    views = views_of(data[:3], data[3:12], data[12:])
    assert [(v.payload, v.waste, v.starts_frame, v.ends_frame) for v in views] == [
        (3, 0, True, False), (7, 2, False, False), (0, 10, False, True)]
    assert [v.commands for v in views] == [(Command.PSH,), (Command.WASTE,), ()]
    assert len(group_writes(views)) == 1
