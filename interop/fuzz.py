"""Million-input fuzz loop over every decoder (``make fuzz``).

Each decoder gets N inputs (default 1,000,000) from a seeded stdlib ``random.Random``: a third
pure random bytes (short and long), two thirds mutations of valid encodings (byte flips, boundary
bytes, insertions, deletions, truncations, splices of two valid inputs). An input is *accepted*
when the decoder returns a result (NEED_DATA included) or raises a subclass of
``anytls_ref.errors.AnyTLSError``; anything else is a failure, printed with its input in hex, and
the run exits 1. The table at the end gives, per decoder, how many inputs gave a result, asked
for more data or raised a typed error, and the time taken.

    python interop/fuzz.py [--inputs N] [--seed S] [--jobs J] [--only NAME ...]

The hypothesis properties over the same decoders are tests/test_properties.py.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anytls_ref.auth import check_auth, encode_auth, password_hash  # noqa: E402
from anytls_ref.errors import AnyTLSError, PaddingSchemeError  # noqa: E402
from anytls_ref.frame import (  # noqa: E402
    FRAME_HEADER, NEED_DATA, Command, FrameDecoder, encode_frame, encode_psh)
from anytls_ref.net.udp import parse_socks_udp, socks_udp_header  # noqa: E402
from anytls_ref.padding import DEFAULT, DEFAULT_SCHEME, parse_scheme  # noqa: E402
from anytls_ref.rules import ClientRules, ServerRules  # noqa: E402
from anytls_ref.settings import ClientSettings, ServerSettings  # noqa: E402
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr  # noqa: E402
from anytls_ref.uot import (  # noqa: E402
    UotRequest, decode_packet, decode_uot_request, encode_packet, encode_uot_request)

HASH = password_hash("fuzz")
HOSTS = ("10.1.2.3", "::1", "::ffff:10.0.0.1", "a.example", "x" * 255)
ADDRS = [encode_socksaddr(SocksAddr(h, 443)) for h in HOSTS]
FRAMES = [
    encode_frame(Command.SETTINGS, 0, ClientSettings(2, "x", DEFAULT.md5).encode())
    + encode_frame(Command.SYN, 1) + encode_psh(1, ADDRS[3] + b"GET / HTTP/1.1\r\n"),
    encode_frame(Command.SERVER_SETTINGS, 0, b"v=2") + encode_frame(Command.SYNACK, 1)
    + encode_psh(1, b"data") + encode_frame(Command.FIN, 1),
    encode_frame(Command.UPDATE_PADDING_SCHEME, 0, DEFAULT_SCHEME),
    encode_frame(Command.ALERT, 0, b"bye") + encode_frame(Command.HEART_REQUEST, 3)
    + encode_frame(Command.SYNACK, 2, b"dial failed") + FRAME_HEADER.pack(42, 7, 3) + b"abc",
    encode_frame(Command.SYN, 1) + encode_frame(Command.SETTINGS, 0, b"v=1"),
]


# ---- the decoders: each takes bytes and returns an outcome label or raises --------------------


def _label(result: object) -> str:
    return "need-data" if result is NEED_DATA else "result"


def auth(data: bytes) -> str:
    return _label(check_auth(data, HASH))


def frames(data: bytes) -> str:
    whole = FrameDecoder()
    whole.feed(data)
    got = whole.frames()
    # the same bytes in two pieces give the same frames
    cut = len(data) // 3
    split = FrameDecoder()
    split.feed(data[:cut])
    again = split.frames()
    split.feed(data[cut:])
    again += split.frames()
    if again != got or split.buffered != whole.buffered:
        raise RuntimeError("chunking changed the frames")
    if sum(7 + len(f.data) + f.skipped for f in got) + whole.buffered != len(data):
        raise RuntimeError("bytes not accounted for")
    return "result" if got else "need-data"


def rules(data: bytes) -> str:
    decoder = FrameDecoder()
    decoder.feed(data)
    decoded = decoder.frames()
    effects = 0
    for role in (ServerRules(DEFAULT.md5, DEFAULT_SCHEME), ServerRules("x", b"stop=1", 2),
                 ClientRules("fuzz", DEFAULT.md5)):
        if isinstance(role, ClientRules):
            role.open_stream(1)
        for frame in decoded:
            effects += len(role.receive(frame))
    return "result"


def client_settings(data: bytes) -> str:
    ClientSettings.decode(data)
    return "result"


def server_settings(data: bytes) -> str:
    ServerSettings.decode(data)
    return "result"


def padding_scheme(data: bytes) -> str:
    parse_scheme(data)  # lenient (what a client does with cmdUpdatePaddingScheme)
    try:
        parse_scheme(data, strict=True)  # strict (local files): a typed error is fine too
    except PaddingSchemeError:
        pass
    return "result"


def socksaddr(data: bytes) -> str:
    return _label(decode_socksaddr(data))


def uot_request(data: bytes) -> str:
    return _label(decode_uot_request(data))


def uot_packet_address(data: bytes) -> str:
    return _label(decode_packet(data, connect=False))


def uot_packet_connect(data: bytes) -> str:
    return _label(decode_packet(data, connect=True))


def socks_udp(data: bytes) -> str:
    return "fragment" if parse_socks_udp(data) is None else "result"


DECODERS: dict[str, tuple[Callable[[bytes], str], list[bytes]]] = {
    "auth.check_auth": (auth, [encode_auth(HASH, 30) + FRAMES[0], encode_auth(HASH, 0),
                               encode_auth(HASH, 500)[:100], encode_auth(password_hash("x"), 3)]),
    "frame.FrameDecoder": (frames, FRAMES),
    "session rules (both roles)": (rules, FRAMES),
    "ClientSettings.decode": (client_settings,
                              [ClientSettings(3, "c", DEFAULT.md5).encode(), b"v=2\nclient="]),
    "ServerSettings.decode": (server_settings, [b"v=2", b"v=3\nx=y", b"v=99999999999"]),
    "padding.parse_scheme": (padding_scheme,
                             [DEFAULT_SCHEME, b"stop=3\n1=5-5,c,9-20\n2=c", b"stop=1\n0=65535-1"]),
    "socksaddr.decode_socksaddr": (socksaddr, ADDRS),
    "uot.decode_uot_request": (uot_request, [encode_uot_request(UotRequest(b, SocksAddr(h, 53)))
                                             for b in (True, False) for h in HOSTS[:4]]),
    "uot.decode_packet (address)": (uot_packet_address,
                                    [encode_packet(b"payload", SocksAddr(h, 53)) for h in HOSTS]),
    "uot.decode_packet (connect)": (uot_packet_connect,
                                    [encode_packet(b"payload", None), encode_packet(b"", None)]),
    "udp.parse_socks_udp": (socks_udp, [socks_udp_header(SocksAddr(h, 53)) + b"payload"
                                        for h in HOSTS]),
}

INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0x0A, 0x3D, 0x7F, 0x80, 0xFE, 0xFF)


def inputs(rng: random.Random, valid: list[bytes], count: int):
    """``count`` inputs: a third random bytes, two thirds mutated valid encodings."""
    randbytes, randrange, choice = rng.randbytes, rng.randrange, rng.choice
    for i in range(count):
        if i % 3 == 0:
            yield randbytes(randrange(9) if i % 2 else randrange(400))
            continue
        data = bytearray(choice(valid))
        for _ in range(1 + randrange(4)):
            op = randrange(6)
            pos = randrange(len(data) + 1)
            if op == 0 and data:
                data[min(pos, len(data) - 1)] = randrange(256)
            elif op == 1 and data:
                data[min(pos, len(data) - 1)] = choice(INTERESTING)
            elif op == 2:
                data[pos:pos] = randbytes(1 + randrange(4))
            elif op == 3:
                del data[pos:pos + 1 + randrange(8)]
            elif op == 4:
                del data[pos:]
            else:  # splice: the head of this one, the tail of another
                other = choice(valid)
                data[pos:] = other[randrange(len(other) + 1):]
        yield bytes(data)


def run_one(args: tuple[str, int, int]) -> dict:
    name, count, seed = args
    decode, valid = DECODERS[name]
    rng = random.Random(f"{seed}:{name}")
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    start = time.perf_counter()
    for data in inputs(rng, valid, count):
        try:
            outcomes[decode(data)] += 1
        except AnyTLSError as exc:
            outcomes[f"error:{type(exc).__name__}"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the run
            outcomes["FOREIGN"] += 1
            if len(failures) < 5:
                failures.append(f"{name}({data.hex()}) raised {exc!r}")
    return {"name": name, "inputs": count, "seconds": time.perf_counter() - start,
            "outcomes": dict(outcomes), "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per decoder")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="*", choices=list(DECODERS), default=None)
    args = parser.parse_args(argv)
    names = args.only or list(DECODERS)
    start = time.perf_counter()
    work = [(name, args.inputs, args.seed) for name in names]
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(run_one, work, chunksize=1)
    else:
        results = [run_one(w) for w in work]
    wall = time.perf_counter() - start
    print(f"{'decoder':30} {'inputs':>10} {'result':>10} {'need-data':>10} {'typed error':>12} "
          f"{'foreign':>8} {'seconds':>8} {'inputs/s':>9}")
    total = 0
    failures = []
    for r in results:
        o = r["outcomes"]
        typed = sum(v for k, v in o.items() if k.startswith("error:"))
        results_n = o.get("result", 0) + o.get("fragment", 0)
        print(f"{r['name']:30} {r['inputs']:>10,} {results_n:>10,} {o.get('need-data', 0):>10,} "
              f"{typed:>12,} {o.get('FOREIGN', 0):>8,} {r['seconds']:>8.1f} "
              f"{r['inputs'] / r['seconds']:>9,.0f}")
        total += r["inputs"]
        failures += r["failures"]
    kinds = Counter()
    for r in results:
        kinds.update({k[6:]: v for k, v in r["outcomes"].items() if k.startswith("error:")})
    print(f"typed errors by class: {dict(kinds)}")
    print(f"total: {total:,} inputs over {len(results)} decoders in {wall:.1f} s wall "
          f"({args.jobs} processes), seed {args.seed}")
    for failure in failures:
        print("FAIL", failure)
    foreign = sum(r["outcomes"].get("FOREIGN", 0) for r in results)
    print(f"accepted {total - foreign:,} of {total:,} inputs; foreign exceptions: {foreign}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
