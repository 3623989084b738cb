"""Spec "Client › Session": the frame format, the 11 commands, the incremental decoder."""

from __future__ import annotations

import random

import pytest

from anytls_ref.errors import LocalProtocolError
from anytls_ref.frame import (
    COMMANDS_WITH_DATA,
    FRAME_HEADER,
    HEADER_SIZE,
    MAX_DATA,
    NEED_DATA,
    Command,
    Frame,
    FrameDecoder,
    command_name,
    encode_frame,
    encode_psh,
)
from wire import decode_all

NO_DATA_COMMANDS = [Command.SYN, Command.FIN, Command.HEART_REQUEST, Command.HEART_RESPONSE]


def raw_frame(command: int, stream_id: int, data: bytes = b"") -> bytes:
    """A frame built by hand, bypassing encode_frame's rules (what a sloppy peer might send)."""
    return FRAME_HEADER.pack(command, stream_id, len(data)) + data


def decode_byte_by_byte(wire: bytes) -> list[Frame]:
    decoder = FrameDecoder()
    frames = []
    for i in range(len(wire)):
        decoder.feed(wire[i : i + 1])
        frames.extend(decoder.frames())
    assert decoder.buffered == 0
    return frames


# A session's worth of frames, including data a peer should not have sent.
MIXED_WIRE = b"".join(
    [
        encode_frame(Command.SETTINGS, 0, b"v=2\nclient=x\npadding-md5=abc"),
        raw_frame(Command.SYN, 1, b"oops"),  # data on SYN: skipped
        encode_psh(1, b"\x03\x0bexample.com\x01\xbb"),
        encode_frame(Command.WASTE, 0, bytes(30)),
        raw_frame(Command.HEART_REQUEST, 9, b"x"),
        raw_frame(42, 7, b"future"),  # unknown command: skipped
        encode_psh(1, b""),
        raw_frame(Command.FIN, 1, b"zz"),
        encode_frame(Command.SYNACK, 1, b"dial failed"),
    ]
)


# ---- the header -----------------------------------------------------------------------------


def test_header_is_command_u8_stream_id_u32_be_length_u16_be():
    assert HEADER_SIZE == 7
    assert encode_frame(Command.PSH, 0x01020304, b"ab") == bytes.fromhex("02 01020304 0002 6162")


def test_command_bytes_match_the_spec_list():
    assert [c.value for c in Command] == list(range(11))
    assert Command.WASTE == 0 and Command.SETTINGS == 4 and Command.SERVER_SETTINGS == 10
    # the commands of version 2 are the last four (the enum's "Since version 2" block)
    assert {c for c in Command if c >= Command.SYNACK} == {
        Command.SYNACK, Command.HEART_REQUEST, Command.HEART_RESPONSE, Command.SERVER_SETTINGS}


@pytest.mark.spec("FRAME-NO-DATA")
def test_commands_with_data_are_exactly_those_the_spec_mentions():
    assert set(Command) - COMMANDS_WITH_DATA == set(NO_DATA_COMMANDS)


def test_command_name_never_raises():
    assert command_name(2) == "PSH"
    assert command_name(42) == "CMD42"


# ---- encoding -------------------------------------------------------------------------------


@pytest.mark.spec("FRAME-NO-DATA")
@pytest.mark.parametrize("command", [*NO_DATA_COMMANDS, 11, 42, 255])
def test_encode_frame_refuses_data_on_commands_that_carry_none(command):
    with pytest.raises(LocalProtocolError):
        encode_frame(command, 1, b"x")
    assert encode_frame(command, 1) == raw_frame(command, 1)  # without data it is fine


@pytest.mark.parametrize("stream_id", [-1, 2**32])
def test_encode_frame_refuses_a_stream_id_outside_uint32(stream_id):
    with pytest.raises(LocalProtocolError):
        encode_frame(Command.FIN, stream_id)

@pytest.mark.parametrize("command", [-1, 256])
def test_encode_frame_refuses_a_command_outside_uint8(command):
    with pytest.raises(LocalProtocolError):
        encode_frame(command, 1)


def test_encode_frame_refuses_more_than_65535_bytes():
    assert len(encode_frame(Command.WASTE, 0, bytes(MAX_DATA))) == HEADER_SIZE + MAX_DATA
    with pytest.raises(LocalProtocolError):
        encode_frame(Command.WASTE, 0, bytes(MAX_DATA + 1))


def test_encode_psh_up_to_65535_bytes_is_one_frame():
    assert decode_all(encode_psh(3, bytes(MAX_DATA))) == [Frame(Command.PSH, 3, bytes(MAX_DATA))]


@pytest.mark.parametrize("size", [MAX_DATA + 1, 2 * MAX_DATA, 200_000])
def test_encode_psh_splits_large_data_into_frames_that_decode_back(size):
    data = random.Random(size).randbytes(size)
    frames = decode_all(encode_psh(5, data))
    assert all(f.command == Command.PSH and f.stream_id == 5 for f in frames)
    assert all(len(f.data) <= MAX_DATA for f in frames)
    assert len(frames) == -(-size // MAX_DATA)
    assert b"".join(f.data for f in frames) == data


def test_encode_psh_accepts_a_memoryview():
    assert encode_psh(1, memoryview(b"abc")) == encode_frame(Command.PSH, 1, b"abc")


# ---- decoding -------------------------------------------------------------------------------


def test_decoder_gives_identical_frames_whole_or_one_byte_at_a_time():
    whole = decode_all(MIXED_WIRE)
    assert len(whole) == 9
    assert decode_byte_by_byte(MIXED_WIRE) == whole


def test_decoder_gives_identical_frames_for_random_chunkings():
    whole = decode_all(MIXED_WIRE)
    rng = random.Random(2)
    for _ in range(200):
        decoder, frames, pos = FrameDecoder(), [], 0
        while pos < len(MIXED_WIRE):
            step = rng.randint(1, 40)
            decoder.feed(MIXED_WIRE[pos : pos + step])
            pos += step
            frames.extend(decoder.frames())
        assert frames == whole


@pytest.mark.spec("FRAME-NO-DATA")
@pytest.mark.parametrize("command", [*NO_DATA_COMMANDS, 42])
def test_decoder_skips_data_on_no_data_and_unknown_commands_and_stays_in_sync(command):
    wire = raw_frame(command, 7, b"junk!") + encode_psh(7, b"after")
    assert decode_all(wire) == [
        Frame(command, 7, b"", skipped=5),
        Frame(Command.PSH, 7, b"after"),
    ]


def test_decoder_returns_unknown_commands_as_plain_ints():
    (frame,) = decode_all(raw_frame(200, 1))
    assert frame.command == 200 and not isinstance(frame.command, Command)
    (known,) = decode_all(raw_frame(Command.FIN, 1))
    assert known.command is Command.FIN


def test_decoder_keeps_data_of_commands_that_carry_data():
    for command in COMMANDS_WITH_DATA:
        (frame,) = decode_all(raw_frame(command, 0, b"payload"))
        assert frame == Frame(command, 0, b"payload", skipped=0)


def test_decoder_needs_a_whole_header_and_all_the_data():
    wire = encode_psh(1, b"hello")
    decoder = FrameDecoder()
    for cut in range(len(wire)):
        decoder.feed(wire[cut : cut + 1])
        if cut < len(wire) - 1:
            assert decoder.next_frame() is NEED_DATA
            assert decoder.buffered == cut + 1
    assert decoder.next_frame() == Frame(Command.PSH, 1, b"hello")
    assert decoder.next_frame() is NEED_DATA


def test_decoder_accepts_zero_and_65535_byte_frames():
    wire = raw_frame(Command.WASTE, 0) + raw_frame(Command.WASTE, 0, bytes(MAX_DATA))
    assert [len(f.data) for f in decode_all(wire)] == [0, MAX_DATA]


def test_decoder_stays_correct_across_its_buffer_compaction():
    # many frames fed at once, read one by one, so the decoder drops consumed bytes midway
    payloads = [bytes([i % 256]) * (i * 37 % 3000) for i in range(200)]
    wire = b"".join(encode_psh(i, p) for i, p in enumerate(payloads))
    decoder = FrameDecoder()
    decoder.feed(wire[: len(wire) // 2])
    got = decoder.frames()
    decoder.feed(wire[len(wire) // 2 :])
    got += decoder.frames()
    assert [f.data for f in got] == payloads
    assert [f.stream_id for f in got] == list(range(200))
