"""Read a client's padding back from the TLS records a server received (for ``probe client``).

padding.split_write turns one write into TLS records; this module goes the other way. Pure: it
takes the plaintext of each record (RawServer reads one record per ``recv``) and answers two
questions:

1. Which records came from which write? A server cannot see write boundaries, only records.
   ``group_writes`` takes a record that *starts a new frame which is not cmdWaste, right after a
   record that ended a frame* as the first record of a new write. Inside one write that only
   happens when a split falls exactly between two frames of a multi-frame write (packet 1:
   Settings | SYN | PSH); the default scheme's sizes never do that, and a data write is one
   cmdPSH frame, so in practice each group is one write. Each padded write ends with a Waste
   frame or on a frame boundary, and the next write starts a fresh frame.

2. Could the records of one write be what split_write makes of it with a line's entries?
   ``check_write`` walks the entries as split_write does, with the payload (the bytes of
   non-Waste frames) known from the records:

   * payload still to come after this record → the record is all payload, its size in [a, b];
   * the record ends the payload → topped up with a Waste frame to a size in [a, b] (or at most
     7 bytes over, for an implementation that counts a Waste frame's data, not its record), or
     not topped up because a Waste frame did not fit: then its size is at least a − 7;
   * no payload left → one Waste frame whose data length is in [a, b] (record a+7 .. b+7, as Go
     and we make it; a bare size in [a, b] is accepted too);
   * ``c`` with no payload left → the write ends here; payload left after the last entry →
     sent as it is, no padding.

   Sizes are checked as the closed range [a, b], although Go and we draw from [a, b): the
   spec says only "sizes between", and a conformance check should not fail another reading.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..frame import FRAME_HEADER, HEADER_SIZE, Command
from ..padding import PaddingScheme


@dataclass(frozen=True, slots=True)
class RecordView:
    """One TLS record, seen as frame bytes."""

    size: int
    payload: int  #: bytes of frames other than cmdWaste (headers included)
    waste: int  #: bytes of cmdWaste frames (headers included)
    starts_frame: bool  #: it begins with a frame header
    first_command: int | None  #: the command of that frame (None if it begins inside a frame)
    ends_frame: bool  #: its last byte ends a frame
    commands: tuple[int, ...]  #: commands of the frames whose header starts in it

    def __str__(self) -> str:
        return f"{self.size}{'w' if self.waste else ''}"


def view_records(records: list[bytes]) -> list[RecordView]:
    """Walk the frames across ``records`` (session bytes, the authentication excluded)."""
    views = []
    header = b""  # a frame header split across records
    left = 0  # data bytes still to come of the current frame
    command = 0  # the current frame's command
    for record in records:
        starts = not header and left == 0
        first = record[0] if starts and record else None
        payload = waste = 0
        commands: list[int] = []
        pos = 0
        while pos < len(record):
            if left == 0:  # in a header
                if not header:
                    commands.append(record[pos])
                take = min(HEADER_SIZE - len(header), len(record) - pos)
                header += record[pos:pos + take]
                command = header[0]
                if len(header) == HEADER_SIZE:
                    _, _, left = FRAME_HEADER.unpack(header)
                    header = b""
            else:  # in a frame's data
                take = min(left, len(record) - pos)
                left -= take
            if command == Command.WASTE:
                waste += take
            else:
                payload += take
            pos += take
        views.append(RecordView(len(record), payload, waste, starts, first,
                                not header and left == 0, tuple(commands)))
    return views


def group_writes(views: list[RecordView]) -> list[list[RecordView]]:
    """Records grouped into the writes they most likely came from (see the module docstring)."""
    writes: list[list[RecordView]] = []
    previous: RecordView | None = None
    for view in views:
        new_write = (previous is None or (previous.ends_frame and view.starts_frame
                                          and view.first_command != Command.WASTE))
        if new_write:
            writes.append([view])
        else:
            writes[-1].append(view)
        previous = view
    return writes


def check_write(records: list[RecordView], entries: tuple | None) -> str | None:
    """None if ``records`` can be one write shaped by ``entries`` (a scheme line: SizeRange
    and "c" items; None or empty = not shaped), else what does not fit."""
    if not entries:
        if any(r.waste for r in records):
            return "padding in a write the scheme does not shape"
        return None
    rest = sum(r.payload for r in records)
    i = 0
    for entry in entries:
        if entry == "c":
            if rest == 0:
                break
            continue
        low, high = entry.low, entry.high
        if i == len(records):
            what = "payload" if rest else "a padding record"
            return f"record {i + 1}: missing ({what} of {entry} expected)"
        r = records[i]
        i += 1
        where = f"record {i} ({r.size} B)"
        if rest == 0:
            if r.payload:
                return f"{where}: payload where only padding of {entry} may come"
            if not low <= r.size <= high + HEADER_SIZE:
                return f"{where}: a padding record outside {entry} (+7 for its header)"
        elif r.payload < rest:
            if r.waste:
                return f"{where}: padding before the payload ended"
            if not low <= r.size <= high:
                return f"{where}: outside {entry}"
            rest -= r.payload
        else:  # this record ends the payload
            if r.waste and not low <= r.size <= high + HEADER_SIZE:
                return f"{where}: topped up outside {entry}"
            if not r.waste and not low - HEADER_SIZE <= r.size <= high:
                return f"{where}: ends the payload without padding, outside {entry}"
            rest = 0
    leftover = records[i:]
    if rest == 0 and leftover:
        return f"{len(leftover)} record(s) after the line's entries were used up"
    if any(r.waste for r in leftover):
        return "padding in the data sent after the line's entries"
    return None


def describe_write(records: list[RecordView]) -> str:
    """``452/713w``: the sizes in bytes of one write's records, ``w`` where one holds padding
    (a cmdWaste frame)."""
    return "/".join(str(r) for r in records)


def check_writes(writes: list[list[RecordView]], scheme: PaddingScheme,
                 first_packet: int) -> list[tuple[int, str, str | None]]:
    """(packet number, record sizes, problem or None) for each write, numbered from
    ``first_packet``; packets from ``stop`` on must not be shaped."""
    results = []
    for n, write in enumerate(writes, start=first_packet):
        entries = scheme.packets.get(n) if n < scheme.stop else None
        results.append((n, describe_write(write), check_write(write, entries)))
    return results
