"""Bad bytes never raise anything but an AnyTLSError: every decoder gets random input and
mutations of valid input (stdlib random, fixed seeds, so a failure reproduces).

"Accepted" means: a valid result, NEED_DATA where the decoder is incremental, or a subclass of
anytls_ref.errors.AnyTLSError. Anything else (IndexError, struct.error, UnicodeError, ...) fails.
"""

from __future__ import annotations

import random
from typing import Callable

import pytest

from anytls_ref.auth import check_auth, encode_auth, password_hash
from anytls_ref.effects import Send
from anytls_ref.errors import AnyTLSError
from anytls_ref.frame import FRAME_HEADER, Command, FrameDecoder, encode_frame, encode_psh
from anytls_ref.padding import DEFAULT, DEFAULT_SCHEME, parse_scheme
from anytls_ref.rules import ClientRules, ServerRules
from anytls_ref.settings import ClientSettings, ServerSettings
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr
from anytls_ref.uot import (
    UotRequest,
    decode_packet,
    decode_uot_request,
    encode_packet,
    encode_uot_request,
)

RUNS = 3000
HASH = password_hash("fuzz")


def random_inputs(seed: int, valid: list[bytes]) -> list[bytes]:
    """RUNS inputs: half random bytes (short and long), half mutations of the valid vectors."""
    rng = random.Random(seed)
    out = []
    for i in range(RUNS):
        if i % 2:
            out.append(rng.randbytes(rng.choice([rng.randint(0, 8), rng.randint(0, 300)])))
            continue
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            pos = rng.randint(0, len(data))
            if op == 0 and data:  # flip a byte
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op == 1:  # insert bytes
                data[pos:pos] = rng.randbytes(rng.randint(1, 4))
            elif op == 2:  # delete a slice
                del data[pos : pos + rng.randint(1, 8)]
            else:  # truncate
                del data[pos:]
        out.append(bytes(data))
    return out


def only_anytls_errors(decode: Callable[[bytes], object], inputs: list[bytes]) -> None:
    for data in inputs:
        try:
            decode(data)
        except AnyTLSError:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{decode.__name__}({data.hex()}) raised {exc!r}")


# ---- valid vectors to mutate ----------------------------------------------------------------

FRAMES = [
    encode_frame(Command.SETTINGS, 0, ClientSettings(2, "x", DEFAULT.md5).encode())
    + encode_frame(Command.SYN, 1) + encode_psh(1, encode_socksaddr(SocksAddr("a.example", 443))),
    encode_frame(Command.SERVER_SETTINGS, 0, b"v=2") + encode_frame(Command.SYNACK, 1),
    encode_frame(Command.UPDATE_PADDING_SCHEME, 0, DEFAULT_SCHEME),
    encode_frame(Command.ALERT, 0, b"bye") + encode_frame(Command.HEART_REQUEST, 3),
]
ADDRS = [encode_socksaddr(SocksAddr(h, 80)) for h in ("10.1.2.3", "::1", "a.example")]
PACKETS = [encode_packet(b"payload", SocksAddr(h, 53)) for h in ("10.1.2.3", "::1", "a.example")]


# ---- the decoders ---------------------------------------------------------------------------


def decode_frames(data: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = decoder.frames()
    # a decoder that never raises must still account for every byte
    assert sum(7 + len(f.data) + f.skipped for f in frames) + decoder.buffered == len(data)


def feed_rules(data: bytes) -> None:
    """Decoded frames into both roles' rules, in every starting state."""
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = decoder.frames()
    for rules in (ServerRules(DEFAULT.md5, DEFAULT_SCHEME), ServerRules("x", b"stop=1", 2),
                  ClientRules("fuzz", DEFAULT.md5)):
        if isinstance(rules, ClientRules):
            rules.open_stream(1)
        effects = [e for frame in frames for e in rules.receive(frame)]
        if isinstance(rules, ServerRules):
            for sid in (0, 1, 2):
                effects += rules.stream_result(sid, "err")
        out = FrameDecoder()
        for effect in effects:
            if isinstance(effect, Send):
                out.feed(effect.frame)
        for sent in out.frames():  # what we send obeys encode_frame's rules
            assert sent.skipped == 0
            encode_frame(sent.command, sent.stream_id, sent.data)


def auth(data: bytes) -> None:
    check_auth(data, HASH)


def client_settings(data: bytes) -> None:
    ClientSettings.decode(data)


def server_settings(data: bytes) -> None:
    ServerSettings.decode(data)


def scheme(data: bytes) -> None:
    parse_scheme(data)
    parse_scheme(data, strict=True)


def socksaddr(data: bytes) -> None:
    decode_socksaddr(data)


def uot_request(data: bytes) -> None:
    decode_uot_request(data)


def packet_address_mode(data: bytes) -> None:
    decode_packet(data, connect=False)


def packet_connect_mode(data: bytes) -> None:
    decode_packet(data, connect=True)


CASES = [
    (decode_frames, FRAMES),
    (feed_rules, FRAMES),
    (auth, [encode_auth(HASH, 30) + FRAMES[0], encode_auth(HASH, 0)]),
    (client_settings, [ClientSettings(3, "c", DEFAULT.md5).encode()]),
    (server_settings, [b"v=2", b"v=3\nx=y"]),
    (scheme, [DEFAULT_SCHEME, b"stop=3\n1=5-5,c,9-20\n2=c"]),
    (socksaddr, ADDRS),
    (uot_request, [encode_uot_request(UotRequest(b, SocksAddr("a.example", 53)))
                   for b in (True, False)]),
    (packet_address_mode, PACKETS),
    (packet_connect_mode, [encode_packet(b"payload", None), encode_packet(b"", None)]),
]


@pytest.mark.parametrize("decode, valid", CASES, ids=[c[0].__name__ for c in CASES])
def test_random_bytes_give_a_result_or_an_anytls_error(decode, valid):
    seed = sum(decode.__name__.encode())  # one fixed seed per decoder
    only_anytls_errors(decode, random_inputs(seed, valid))


def random_frame_streams(seed: int) -> list[bytes]:
    """Well-framed streams of random commands (0..11 and 42), sids 0..3 and plausible data."""
    rng = random.Random(seed)
    payloads = [b"", b"v=2", b"v=1", f"v=3\npadding-md5={DEFAULT.md5}".encode(), DEFAULT_SCHEME,
                b"stop=x", b"\xff\xfe", b"dial failed", ADDRS[2]]
    streams = []
    for _ in range(RUNS):
        frames = []
        for _ in range(rng.randint(1, 12)):
            command = rng.choice([*range(12), 42])
            data = rng.choice(payloads) if rng.random() < 0.7 else rng.randbytes(rng.randint(0, 9))
            frames.append(FRAME_HEADER.pack(command, rng.randrange(4), len(data)) + data)
        streams.append(b"".join(frames))
    return streams


def test_random_frame_sequences_never_break_the_session_rules():
    only_anytls_errors(feed_rules, random_frame_streams(7))


def test_the_harness_reports_foreign_exceptions():
    def broken(data: bytes) -> None:
        raise IndexError("boom")

    with pytest.raises(pytest.fail.Exception, match="IndexError"):
        only_anytls_errors(broken, [b"x"])
