"""Spec "paddingScheme specific meaning and implementation"."""

from __future__ import annotations

import random

import pytest

from anytls_ref.errors import PaddingSchemeError
from anytls_ref.frame import FRAME_HEADER, Command, Frame, FrameDecoder, encode_psh
from anytls_ref.padding import (
    CHECK,
    DEFAULT,
    DEFAULT_SCHEME,
    Padder,
    SizeRange,
    padding0_length,
    parse_scheme,
    plan_packet,
    split_write,
    waste_frame,
)


class RecordingRng:
    """A fake rng: records each randrange(a, b) call and answers a, b-1, a, b-1, ..."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def randrange(self, start: int, stop: int) -> int:
        self.calls.append((start, stop))
        return start if len(self.calls) % 2 else stop - 1


# ---- the default scheme ---------------------------------------------------------------------


def test_default_scheme_is_137_bytes_with_the_known_md5():
    assert len(DEFAULT_SCHEME) == 137
    assert not DEFAULT_SCHEME.endswith(b"\n")
    assert DEFAULT.md5 == "75cff2ad89aadf5e257059ee571ebe11"
    assert DEFAULT.is_default


def test_default_scheme_parses_to_the_spec_table():
    assert DEFAULT.stop == 8
    assert DEFAULT.warnings == ()
    assert DEFAULT.packets[0] == (SizeRange(30, 30),)
    assert DEFAULT.packets[2] == (SizeRange(400, 500), "c", *[SizeRange(500, 1000), "c"] * 3,
                                  SizeRange(500, 1000))
    assert sorted(DEFAULT.packets) == list(range(8))


def test_md5_is_over_the_exact_bytes():
    with_newline = parse_scheme(DEFAULT_SCHEME + b"\n")
    assert with_newline.packets == DEFAULT.packets
    assert with_newline.md5 != DEFAULT.md5
    assert not with_newline.is_default


# ---- stop -----------------------------------------------------------------------------------


def test_scheme_without_stop_is_rejected_naming_the_problem():
    with pytest.raises(PaddingSchemeError, match="no stop=N line") as info:
        parse_scheme(b"0=30-30\n1=100-400")
    assert info.value.line is None


@pytest.mark.parametrize("value", [b"", b"eight", b"-1", b"+8", b"8.0", b"1e3"])
def test_stop_that_is_not_a_whole_number_is_rejected_naming_its_line(value):
    # decisions.md D10
    with pytest.raises(PaddingSchemeError, match="stop=.*not a whole number") as info:
        parse_scheme(b"0=30-30\nstop=" + value)
    assert info.value.line == 2
    assert str(info.value).startswith("line 2: ")


def test_scheme_that_is_not_utf8_is_rejected_naming_its_line():
    with pytest.raises(PaddingSchemeError, match="UTF-8") as info:
        parse_scheme(b"stop=8\n0=30-30\n1=\xff")
    assert info.value.line == 3


def test_stop_zero_shapes_nothing_not_even_padding0():
    scheme = parse_scheme(b"stop=0\n0=30-30\n1=100-100")
    assert plan_packet(scheme, 0, RecordingRng()) is None
    assert padding0_length(scheme, RecordingRng()) == 0  # decisions.md D16


# ---- malformed entries ----------------------------------------------------------------------


MALFORMED = (
    b"stop=8\n"
    b"0=30-30\n"
    b"1=100-400,abc,c\n"  # line 3: entry "abc"
    b"2=x\n"  # line 4: the only entry is bad
    b"junk\n"  # line 5: not key=value
    b"02=5-5\n"  # line 6: packet keys are plain decimal numbers
    b"3=0-10,20-10,10-70000"  # line 7: non-positive, reversed, too large
)


def test_malformed_entries_are_skipped_with_a_warning_naming_the_line():
    scheme = parse_scheme(MALFORMED)
    assert scheme.packets[1] == (SizeRange(100, 400), "c")
    assert scheme.packets[2] == ()  # a line with nothing usable: the packet is sent as it is
    assert scheme.packets[3] == (SizeRange(10, 20),)
    assert [w.split(":")[0] for w in scheme.warnings] == [
        "line 3", "line 4", "line 5", "line 6", "line 7", "line 7"]
    assert "'abc'" in scheme.warnings[0]


@pytest.mark.parametrize("line_no", [3, 4, 5, 6, 7])
def test_strict_parsing_raises_on_the_first_malformed_line(line_no):
    lines = MALFORMED.split(b"\n")
    clean = [line for i, line in enumerate(lines, 1) if i < 3 or i == line_no]
    with pytest.raises(PaddingSchemeError) as info:
        parse_scheme(b"\n".join(clean), strict=True)
    assert info.value.line == 3  # the malformed line is the third of this scheme
    assert str(info.value).startswith("line 3: ")


def test_reversed_range_bounds_are_swapped():
    # decisions.md D10 (as Go)
    assert parse_scheme(b"stop=2\n1=900-500").packets[1] == (SizeRange(500, 900),)


@pytest.mark.parametrize("entry", [b"0-0", b"0-100", b"1-65536", b"70000-70000"])
def test_non_positive_or_oversized_sizes_are_skipped(entry):
    # decisions.md D10: a size must fit one Waste frame's u16 length
    scheme = parse_scheme(b"stop=2\n1=" + entry)
    assert scheme.packets[1] == ()
    assert len(scheme.warnings) == 1


def test_largest_size_is_65535():
    assert parse_scheme(b"stop=2\n1=65535-65535").packets[1] == (SizeRange(65535, 65535),)


def test_packet_keys_with_leading_zeros_are_not_packet_numbers():
    # Go finds a packet's line by strconv.Itoa(packet): "02" is never packet 2 (decisions.md D17)
    scheme = parse_scheme(b"stop=8\n2=10-10\n02=20-20")
    assert scheme.packets == {2: (SizeRange(10, 10),)}


def test_blank_lines_are_ignored():
    assert parse_scheme(b"stop=2\n\n1=5-5\n").warnings == ()


# ---- drawing sizes --------------------------------------------------------------------------


def test_sizes_are_drawn_from_a_inclusive_to_b_exclusive():
    # decisions.md D1: the range a-b draws from [a, b), as Go does
    rng = RecordingRng()
    scheme = parse_scheme(b"stop=2\n1=100-400,c,500-1000")
    assert plan_packet(scheme, 1, rng) == [100, CHECK, 999]
    assert rng.calls == [(100, 400), (500, 1000)]


def test_real_draws_stay_in_a_to_b_minus_1():
    scheme = parse_scheme(b"stop=2\n1=10-13")
    rng = random.Random(1)
    drawn = {plan_packet(scheme, 1, rng)[0] for _ in range(500)}
    assert drawn == {10, 11, 12}


def test_equal_bounds_give_that_size_without_asking_the_rng():
    rng = RecordingRng()
    assert plan_packet(DEFAULT, 3, rng)[0] == 9
    assert rng.calls == [(500, 1000)]  # only the second entry of "3=9-9,500-1000" draws


@pytest.mark.spec("PAD-UNDEFINED-DIRECT")
def test_plan_is_none_from_stop_on_and_empty_for_a_missing_line():
    scheme = parse_scheme(b"stop=3\n1=5-5")
    assert plan_packet(scheme, 2, RecordingRng()) == []
    assert plan_packet(scheme, 3, RecordingRng()) is None


@pytest.mark.spec("PAD-PADDING0-WITH-AUTH")
def test_padding0_is_the_first_size_of_line_0():
    assert padding0_length(DEFAULT, RecordingRng()) == 30
    assert padding0_length(parse_scheme(b"stop=8\n0=c,40-40,50-50"), RecordingRng()) == 40
    assert padding0_length(parse_scheme(b"stop=8\n1=40-40"), RecordingRng()) == 0


# ---- splitting a write into records ---------------------------------------------------------


@pytest.mark.spec("PAD-SPLIT-WASTE")
def test_all_padding_record_is_one_waste_frame_of_length_l():
    assert waste_frame(3) == bytes.fromhex("00 00000000 0003 000000")
    assert split_write(b"", [100]) == [waste_frame(100)]
    assert len(split_write(b"", [100])[0]) == 107


@pytest.mark.spec("PAD-SPLIT-WASTE")
def test_last_payload_record_is_topped_up_to_exactly_l():
    (record,) = split_write(bytes(50), [100])
    assert len(record) == 100
    assert record == bytes(50) + waste_frame(43)


@pytest.mark.spec("PAD-SPLIT-WASTE")
def test_no_top_up_when_not_even_one_waste_byte_fits():
    assert split_write(bytes(93), [100]) == [bytes(93)]  # 100 - 93 - 7 == 0
    assert split_write(bytes(92), [100]) == [bytes(92) + waste_frame(1)]
    assert split_write(bytes(100), [100]) == [bytes(100)]


@pytest.mark.spec("PAD-SPLIT-REMAINDER")
def test_payload_longer_than_the_plan_is_sent_in_one_last_record():
    assert split_write(bytes(250), [100, 100]) == [bytes(100), bytes(100), bytes(50)]


@pytest.mark.spec("PAD-CHECK-MARK")
def test_check_mark_stops_padding_once_the_payload_is_sent():
    plan = [50, CHECK, 500, CHECK, 500]
    assert split_write(bytes(20), plan) == [bytes(20) + waste_frame(23)]
    assert split_write(bytes(60), plan) == [bytes(50), bytes(10) + waste_frame(483)]


@pytest.mark.spec("PAD-CHECK-MARK")
def test_check_mark_first_with_nothing_to_send_sends_nothing():
    assert split_write(b"", [CHECK, 100]) == []


def expected_layout(payload_len: int, plan: list[int]) -> list[tuple[int, int | None]]:
    """The spec rules, restated: per record (payload bytes in it, Waste data length or None)."""
    layout, remain = [], payload_len
    for l in plan:
        if l == CHECK:
            if remain == 0:
                break  # "no longer send subsequent padding packets"
            continue
        if remain > l:  # all payload, exactly l bytes
            layout.append((l, None))
            remain -= l
        elif remain > 0:  # the last payload part, topped up to exactly l when a Waste fits
            waste = l - remain - 7
            layout.append((remain, waste if waste > 0 else None))
            remain = 0
        else:  # "If the user data is exhausted ... send cmdWaste": data length l, record l+7
            layout.append((0, l))
    if remain:  # "the remaining data is sent directly"
        layout.append((remain, None))
    return layout


def framed_payload(size: int) -> bytes:
    """``size`` bytes of real frames (one PSH) when a frame fits, else raw bytes."""
    body = bytes(i % 251 for i in range(max(size - 7, 0)))
    return encode_psh(1, body) if size >= 7 else bytes(range(size))


@pytest.mark.spec("PAD-SPLIT-REMAINDER")
@pytest.mark.spec("PAD-SPLIT-WASTE")
@pytest.mark.spec("PAD-CHECK-MARK")
@pytest.mark.spec("PAD-UNDEFINED-DIRECT")
@pytest.mark.parametrize("packet", range(10))
def test_records_follow_the_spec_for_every_default_packet_and_payload_size(packet):
    for size in range(3001):
        rng = random.Random(packet * 10_000 + size)
        plan = plan_packet(DEFAULT, packet, random.Random(packet * 10_000 + size))
        padder = Padder(DEFAULT, rng)
        padder.packet = packet  # jump the per-session counter to this packet
        payload = framed_payload(size)
        records = padder.records(payload)

        if not plan:  # packets from stop on (8, 9), or without a line: written as they are
            assert records == ([payload] if payload else []), (packet, size)
            continue
        layout = expected_layout(size, plan)
        assert len(records) == len(layout), (packet, size, plan)
        offset = 0
        for record, (part, waste) in zip(records, layout):
            assert record[:part] == payload[offset : offset + part]
            assert record[part:] == (waste_frame(waste) if waste is not None else b"")
            offset += part
        assert offset == size
        sizes = [l for l in plan if l != CHECK]  # record i follows size i; a leftover has none
        for record, l, (part, waste) in zip(records, sizes, layout):
            if part == 0:  # all padding
                assert len(record) == l + 7
            elif waste is not None or part == l:  # all payload, or topped up
                assert len(record) == l
            else:  # the last part, too close to l for a Waste frame
                assert l - 7 <= len(record) == part <= l

        if size == 0 or size >= 7:  # the receiver sees the original frames plus Waste only
            decoder = FrameDecoder()
            decoder.feed(b"".join(records))
            frames = decoder.frames()
            assert decoder.buffered == 0
            real = [f for f in frames if f.command != Command.WASTE]
            assert real == ([Frame(Command.PSH, 1, payload[7:])] if size else [])


# ---- the per-session packet counter ---------------------------------------------------------


@pytest.mark.spec("PAD-UNDEFINED-DIRECT")
def test_padder_numbers_packets_from_1_and_stops_at_stop():
    scheme = parse_scheme(b"stop=3\n0=30-30\n1=10-10\n2=20-20")
    padder = Padder(scheme, RecordingRng())
    assert padder.packet == 1 and padder.active  # the authentication was packet 0
    assert padder.records(b"") == [waste_frame(10)]
    assert padder.active
    assert padder.records(b"") == [waste_frame(20)]
    assert not padder.active  # packet 3 == stop: no more shaping, ever
    assert padder.records(b"late") == [b"late"]


def test_padder_with_stop_1_is_inactive_from_the_start():
    assert not Padder(parse_scheme(b"stop=1\n0=30-30"), RecordingRng()).active


@pytest.mark.spec("PAD-PACKET1")
@pytest.mark.spec("PAD-PACKET2")
def test_padder_uses_the_default_scheme_for_settings_then_first_data():
    padder = Padder(DEFAULT, RecordingRng())
    first = FRAME_HEADER.pack(Command.SETTINGS, 0, 3) + b"v=3"
    (record,) = padder.records(first)  # packet 1: one record of 100..399 bytes
    assert len(record) == 100
    # packet 2, "400-500,c,500-1000,c,500-1000,c,..." drawn as 499, 500, 999, 500, 999
    records = padder.records(bytes(2000))
    assert [len(r) for r in records] == [499, 500, 999, 500]
    assert records[-1] == bytes(2) + waste_frame(491)  # 2 payload bytes left, then c: stop
    assert padder.packet == 3
