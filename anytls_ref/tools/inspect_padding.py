"""anytls_ref.tools.inspect_padding — spec "paddingScheme specific meaning and implementation"
shown: ``anytls-ref padding`` explains a padding scheme without a network.

Theory of operation: it prints the scheme's md5 (what cmdSettings carries as ``padding-md5``)
and ``stop``, then

* a table of every packet line, one row per entry: each range ``a-b`` is one TLS record whose
  size is drawn from [a, b) (``a`` exactly when a = b), each ``c`` a check mark where the write
  stops if its payload is used up, and what the packet is (padding0, Settings+SYN+PSH, the first
  user data, ...);
* sampled plans: the record sizes a session would draw for each packet line below ``stop``;
* with ``--simulate BYTES``: how one write of BYTES (already framed) is split into records at
  each packet, with the payload and Waste bytes of each record (``padding.split_write``).

The caller passes the random source (``rng.randrange``), so a seed repeats a run; this module
prints but does no other I/O.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from tabulate import tabulate

from ..auth import AUTH_OVERHEAD
from ..frame import HEADER_SIZE
from ..padding import CHECK, PaddingScheme, RandomSource, SizeRange, plan_packet, split_write

#: What each packet is on a client session (spec: "Packet 1 should include: cmdSettings and the
#: first Stream's cmdSYN + cmdPSH(proxy target address)", "Packet 2 should be the first data
#: packet proxied from the user, such as TLS ClientHello.")
ROLES = {
    0: "padding0 (auth request)",
    1: "Settings+SYN+PSH(addr)",
    2: "first user data",
}
LATER_ROLE = "later writes"


def role(packet: int) -> str:
    return ROLES.get(packet, LATER_ROLE)


def entry_meaning(packet: int, entry: SizeRange | str, record_no: int) -> str:
    """One line of plain English for one entry of a packet line."""
    if not isinstance(entry, SizeRange):
        return "check: stop if the write is used up"
    size = (f"{entry.low} B" if entry.low == entry.high
            else f"{entry.low}..{entry.high - 1} B")
    if packet == 0:
        if record_no == 1:
            return f"padding0: {size}, after {AUTH_OVERHEAD} B of auth"
        return "unused: padding0 is the first size only"
    return f"record {record_no}: {size}"


def _runs(scheme: PaddingScheme, first: int) -> list[tuple[int, int]]:
    """Packets first .. stop-1 as (start, end) runs: a packet with a line is a run of its own,
    consecutive packets without one are one run (so stop=1000 does not print 1000 rows)."""
    runs: list[tuple[int, int]] = []
    for packet in range(first, scheme.stop):
        if (runs and not scheme.packets.get(packet) and not scheme.packets.get(runs[-1][1])
                and runs[-1][1] == packet - 1):
            runs[-1] = (runs[-1][0], packet)
        else:
            runs.append((packet, packet))
    return runs


def _label(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def entries_table(scheme: PaddingScheme) -> str:
    """Every packet below ``stop``: its entries (one row each) or that it has no line."""
    rows = []
    for start, end in _runs(scheme, 0):
        entries = scheme.packets.get(start)
        if not entries:
            note = ("no line: padding0 is empty" if start == 0
                    else "no line: written as it is, one record")
            rows.append([_label(start, end), role(start) if start == end else LATER_ROLE, "—",
                         note])
            continue
        record_no = 0
        for i, entry in enumerate(entries):
            if entry != "c":
                record_no += 1
            rows.append([start if i == 0 else "", role(start) if i == 0 else "",
                         str(entry), entry_meaning(start, entry, record_no)])
    beyond = sorted(p for p in scheme.packets if p >= scheme.stop)
    tail = f"packets {scheme.stop} and later: written as they are (stop={scheme.stop})"
    if beyond:
        tail += f"\nnever used (at or after stop): line {', '.join(map(str, beyond))}"
    if not rows:
        return tail
    table = tabulate(rows, headers=["pkt", "role", "entry", "meaning"], disable_numparse=True,
                     colalign=("right", "left", "left", "left"))
    return f"{table}\n{tail}"


def format_plan(plan: list[int] | None) -> str:
    if plan is None:
        return "(after stop: as it is)"
    if not plan:
        return "(no line: as it is)"
    return " ".join("c" if size == CHECK else str(size) for size in plan)


def sample_plans(scheme: PaddingScheme, samples: int, rng: RandomSource) -> str:
    """``samples`` draws of the record sizes of every packet line below ``stop``."""
    packets = [p for p in range(scheme.stop) if scheme.packets.get(p)]
    if not packets:
        return "(no packet line below stop: nothing to draw)"
    rows = []
    for n in range(1, samples + 1):
        for i, packet in enumerate(packets):
            plan = format_plan(plan_packet(scheme, packet, rng))
            rows.append([n if i == 0 else "", packet, plan])
    return tabulate(rows, headers=["sample", "pkt", "record sizes (c: check mark)"],
                    disable_numparse=True, colalign=("right", "right", "left"))


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One TLS record of a simulated write."""

    packet: int
    number: int  #: 1-based within the packet
    size: int
    payload: int  #: bytes of the write in this record
    waste: int  #: bytes of the cmdWaste frame (header included) topping it up
    note: str
    through: int = -1  #: last packet of a run of packets without a line (-1: just ``packet``)


def simulate(scheme: PaddingScheme, write_size: int, rng: RandomSource) -> list[SimRecord]:
    """Split one write of ``write_size`` bytes at every packet 1 .. stop-1 with split_write.

    Packets without a line are one record, as they are (a run of them is reported once, at its
    first packet). The payload is zeros, so a record's payload part is worked out from the
    order split_write builds it in: payload first, then a Waste frame.
    """
    out: list[SimRecord] = []
    for packet, last in _runs(scheme, 1):
        plan = plan_packet(scheme, packet, rng) or []
        if not plan:
            out.append(SimRecord(packet, 1, write_size, write_size, 0, "no line: as it is",
                                 through=last))
            continue
        records = split_write(bytes(write_size), plan)
        left = write_size
        sizes = [s for s in plan if s != CHECK]
        for number, record in enumerate(records, start=1):
            payload = min(left, len(record))
            left -= payload
            waste = len(record) - payload
            if number > len(sizes):
                note = "rest of the write, sent directly"
            elif waste == 0:
                note = "all payload"
            elif payload == 0:
                note = "all Waste (its data is the planned size)"
            else:
                note = "end of the payload + Waste"
            out.append(SimRecord(packet, number, len(record), payload, waste, note))
        if len(records) < len(sizes):
            out.append(SimRecord(packet, 0, 0, 0, 0, "c: write used up, no more records"))
    return out


def simulation_table(records: list[SimRecord]) -> str:
    rows = []
    last = None
    for r in records:
        pkt = _label(r.packet, max(r.packet, r.through)) if r.packet != last else ""
        last = r.packet
        if r.number == 0:
            rows.append([pkt, "", "", "", "", r.note])
        else:
            rows.append([pkt, r.number, r.size, r.payload, r.waste, r.note])
    return tabulate(rows, headers=["pkt", "rec", "size", "payload", "Waste", "note"],
                    disable_numparse=True,
                    colalign=("right", "right", "right", "right", "right", "left"))


def report(scheme: PaddingScheme, *, name: str, samples: int, seed: int, rng: RandomSource,
           simulate_bytes: int | None = None, out: TextIO | None = None) -> None:
    """Print the whole report for ``scheme`` (``name`` says where it came from)."""
    if out is None:
        out = sys.stdout
    stop_text = (f"{scheme.stop} (packets 0..{scheme.stop - 1} are shaped)" if scheme.stop
                 else "0 (nothing is shaped)")
    print(f"padding scheme: {name} ({len(scheme.raw)} bytes)", file=out)
    print(f"md5:  {scheme.md5}  (cmdSettings padding-md5)", file=out)
    if scheme.raw.endswith(b"\n"):
        print("      (over every byte, the final newline too; the default has none)", file=out)
    print(f"stop: {stop_text}", file=out)
    print("", file=out)
    print("Packet lines: a-b is one TLS record of a size from [a, b), c a check mark.",
          file=out)
    print("With no payload left, a record is one Waste frame of that data length (+7 B).",
          file=out)
    print("Only clients pad; a server writes as it is.", file=out)
    print(entries_table(scheme), file=out)
    if samples:
        print("", file=out)
        print(f"Sampled plans (seed {seed}; --seed {seed} repeats them):", file=out)
        print(sample_plans(scheme, samples, rng), file=out)
    if simulate_bytes is not None:
        print("", file=out)
        print(f"One write of {simulate_bytes} bytes (frames included), split at each packet",
              file=out)
        print(f"(Waste counts its {HEADER_SIZE}-byte frame header):", file=out)
        if scheme.stop <= 1:
            print(f"(stop={scheme.stop}: every write is sent as it is)", file=out)
        else:
            print(simulation_table(simulate(scheme, simulate_bytes, rng)), file=out)
            print(f"packets {scheme.stop} and later: one write, as it is", file=out)
