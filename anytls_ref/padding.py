"""anytls_ref.padding — spec "paddingScheme specific meaning and implementation".

Theory of operation. A padding scheme is ``key=value`` text (the same codec as settings.py):

    stop=8                                    packets 0..7 are shaped, later ones are not
    0=30-30                                   packet 0: padding0 of the authentication request
    1=100-400                                 packet 1: Settings + SYN + PSH(SocksAddr)
    2=400-500,c,500-1000,c,500-1000,c,...     packet 2: the first user data, up to 5 records
    3=9-9,500-1000
    ...

A *packet* is one write to TLS (the counter counts writes, per session; the authentication is
packet 0 and the first write after it is packet 1). For a packet below ``stop`` whose line
exists, each comma-separated entry is one TLS record of a size drawn from ``a-b``, or a check
mark ``c``. Splitting one write into records (``split_write``) goes entry by entry:

* more payload left than the record size → the record is all payload;
* some payload left → the rest of the payload, topped up to the record size with a cmdWaste
  frame when at least one byte of Waste data fits (a Waste frame costs a 7-byte header);
* no payload left → a record that is one cmdWaste frame with the record size as data length;
* ``c`` → if no payload is left, stop here and send no further padding records.

Payload left after the last entry is written as it is, and packets without a line are written
as they are. Only clients pad; the server writes plainly.

Randomness comes in from the caller (``rng.randrange(a, b)``, e.g. ``random.SystemRandom()``),
so tests and vectors can fix it. Sizes are drawn from [a, b) — b itself never, as in Go
(decisions.md D1). The md5 is taken over the exact scheme bytes, lowercase hex.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from .errors import PaddingSchemeError
from .frame import FRAME_HEADER, HEADER_SIZE, MAX_DATA, Command

#: The default scheme: 9 lines, joined by "\n", no trailing newline (137 bytes).
DEFAULT_SCHEME = (
    b"stop=8\n"
    b"0=30-30\n"
    b"1=100-400\n"
    b"2=400-500,c,500-1000,c,500-1000,c,500-1000,c,500-1000\n"
    b"3=9-9,500-1000\n"
    b"4=500-1000\n"
    b"5=500-1000\n"
    b"6=500-1000\n"
    b"7=500-1000"
)

#: A check mark in a plan (Go's CheckMark).
CHECK = -1
#: The largest record size an entry may ask for: an all-padding record is one Waste frame whose
#: u16 length must hold the whole size.
MAX_RECORD_SIZE = MAX_DATA


class RandomSource(Protocol):
    def randrange(self, start: int, stop: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class SizeRange:
    """A record size entry ``low-high``: sizes are drawn from [low, high), or ``low`` if equal."""

    low: int
    high: int

    def draw(self, rng: RandomSource) -> int:
        return self.low if self.low == self.high else rng.randrange(self.low, self.high)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


Entry = SizeRange | str  # a SizeRange or the check mark "c"


@dataclass(frozen=True)
class PaddingScheme:
    raw: bytes  #: the exact bytes (what the md5 and cmdUpdatePaddingScheme carry)
    stop: int  #: packets 0 .. stop-1 are shaped
    packets: dict[int, tuple[Entry, ...]]  #: packet index → its entries
    md5: str  #: lowercase hex md5 of ``raw``
    #: entries that were skipped as malformed, each "line N: why" (empty for a clean scheme)
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_default(self) -> bool:
        return self.raw == DEFAULT_SCHEME


def scheme_md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


def _parse_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


#: How much of a bad line an error message quotes (a scheme may come from a hostile server).
SHOWN_CHARS = 60


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut to SHOWN_CHARS."""
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…")


def parse_scheme(raw: bytes, *, strict: bool = False) -> PaddingScheme:
    """Parse a scheme. A missing or non-numeric ``stop`` is always an error.

    Malformed entries and lines are skipped and listed in ``warnings`` (Go skips them silently);
    with ``strict=True`` (local files, the ``padding`` inspector) the first one is an error that
    names its line.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PaddingSchemeError("not valid UTF-8", line=line) from None
    warnings: list[str] = []
    stop: int | None = None
    packets: dict[int, tuple[Entry, ...]] = {}

    def skip(line_no: int, why: str) -> None:
        if strict:
            raise PaddingSchemeError(why, line=line_no)
        warnings.append(f"line {line_no}: {why}")

    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            skip(line_no, f"{_shown(line)} is not key=value")
            continue
        if key == "stop":
            stop = _parse_int(value)
            if stop is None:
                raise PaddingSchemeError(f"stop={_shown(value)} is not a whole number",
                                         line=line_no)
            continue
        index = _parse_int(key)
        if index is None or str(index) != key:
            # Go looks a line up by strconv.Itoa(packet): "02" is never packet 2 (decisions.md D17)
            skip(line_no, f"unknown key {_shown(key)} (expected stop or a packet number)")
            continue
        entries: list[Entry] = []
        for item in value.split(","):
            entry = _parse_entry(item)
            if isinstance(entry, str) and entry != "c":
                skip(line_no, f"entry {_shown(item)} skipped: {entry}")
                continue
            entries.append(entry)
        packets[index] = tuple(entries)
    if stop is None:
        raise PaddingSchemeError("the scheme has no stop=N line")
    return PaddingScheme(bytes(raw), stop, packets, scheme_md5(raw), tuple(warnings))


def _parse_entry(item: str) -> Entry:
    """``c`` → "c"; ``a-b`` → SizeRange; anything else → a string saying why it is bad."""
    if item == "c":
        return "c"
    low_text, sep, high_text = item.partition("-")
    low, high = _parse_int(low_text), _parse_int(high_text)
    if not sep or low is None or high is None:
        return "not a range a-b of whole numbers"
    low, high = min(low, high), max(low, high)  # Go swaps reversed bounds
    if low <= 0:
        return "sizes must be positive"
    if high > MAX_RECORD_SIZE:
        return f"sizes above {MAX_RECORD_SIZE} do not fit a Waste frame"
    return SizeRange(low, high)


DEFAULT = parse_scheme(DEFAULT_SCHEME, strict=True)


def plan_packet(scheme: PaddingScheme, packet: int, rng: RandomSource) -> list[int] | None:
    """Record sizes (and CHECK marks) for write number ``packet``; None once ``packet >= stop``.

    An empty list means "send this write as it is" (no line for this packet).
    """
    if packet >= scheme.stop:
        return None
    return [CHECK if e == "c" else e.draw(rng) for e in scheme.packets.get(packet, ())]


def padding0_length(scheme: PaddingScheme, rng: RandomSource) -> int:
    """Length of padding0 in the authentication request: the first size of line 0, else 0."""
    plan = plan_packet(scheme, 0, rng) or []
    return next((size for size in plan if size != CHECK), 0)


def waste_frame(data_length: int) -> bytes:
    """A cmdWaste frame with ``data_length`` zero bytes ("suggested to use 0")."""
    return FRAME_HEADER.pack(Command.WASTE, 0, data_length) + bytes(data_length)


def split_write(payload: bytes, plan: list[int]) -> list[bytes]:
    """Split one write (already framed bytes) into TLS records following ``plan``.

    Each returned item is written with one TLS write. See the module docstring for the rules.
    """
    records: list[bytes] = []
    rest = payload
    for size in plan:
        if size == CHECK:
            # [PAD-CHECK-MARK] "if the user data has no remaining after the previous packet
            # splitting is completed, directly return to this Write TLS, and no longer send
            # subsequent padding packets"
            if not rest:
                break
            continue
        if len(rest) > size:  # this record is all payload
            records.append(rest[:size])
            rest = rest[size:]
        elif rest:  # the last part of the payload, topped up with Waste when it fits
            fill = size - len(rest) - HEADER_SIZE
            records.append(rest + waste_frame(fill) if fill > 0 else rest)
            rest = b""
        else:  # no payload left: the whole record is one Waste frame
            # [PAD-SPLIT-WASTE] "If the user data is exhausted before packet splitting is
            # completed, send cmdWaste with data ... for padding"
            records.append(waste_frame(size))
    if rest:
        # [PAD-SPLIT-REMAINDER] "if there is still remaining user data after packet splitting is
        # completed, the remaining data is sent directly"
        records.append(rest)
    return records


class Padder:
    """Per-session packet counter: turns each write into its records until ``stop``.

    ``active`` turns False for good once the counter reaches ``stop``; callers then write
    directly (the hot path never calls in here again).
    """

    def __init__(self, scheme: PaddingScheme, rng: RandomSource) -> None:
        self.scheme = scheme
        self._rng = rng
        #: the next write's packet number; the authentication request was packet 0
        self.packet = 1
        self.active = scheme.stop > 1

    def records(self, payload: bytes) -> list[bytes]:
        plan = plan_packet(self.scheme, self.packet, self._rng)
        self.packet += 1
        if plan is None or self.packet >= self.scheme.stop:
            self.active = False
        if not plan:
            # [PAD-UNDEFINED-DIRECT] "If the sending strategy of a certain packet before stop is
            # not defined by PaddingScheme, send the packet directly." (from stop on: inactive)
            return [payload] if payload else []
        return split_write(payload, plan)
