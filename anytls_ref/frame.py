"""anytls_ref.frame — spec "Client › Session": the frame format and the command list.

Theory of operation: after authentication both sides exchange frames over TLS, each a fixed
7-byte header and up to 65535 bytes of data:

    | command | streamId          | data length       | data            |
    | uint8   | Big-Endian uint32 | Big-Endian uint16 | Variable length |

``encode_frame`` writes one frame and refuses data on commands that carry none; ``encode_psh``
splits user data into as many cmdPSH frames as the 16-bit length needs. ``FrameDecoder`` is
incremental: feed it whatever the socket returned, then take frames until it says NEED_DATA.
It hands back the data of commands that carry data and *skips* (drops) the data of those that
must not carry any, so a sloppy peer cannot desynchronise us (spec_notes/decisions.md D3).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .errors import LocalProtocolError


class Command(enum.IntEnum):
    """The 11 commands of spec "Client › Session › command" (value = wire byte)."""

    # Since version 1
    WASTE = 0  #: padding; read its data completely and discard it
    SYN = 1  #: client opens a stream
    PSH = 2  #: stream data
    FIN = 3  #: stream close (EOF mark)
    SETTINGS = 4  #: client → server settings, first frame of every session
    ALERT = 5  #: server → client warning text, then both close the session
    UPDATE_PADDING_SCHEME = 6  #: server → client: use this padding scheme for new sessions
    # Since version 2
    SYNACK = 7  #: server → client: the stream's outbound connection is up (or failed: data = error)
    HEART_REQUEST = 8  #: keepalive request; answer with HEART_RESPONSE
    HEART_RESPONSE = 9  #: keepalive answer
    SERVER_SETTINGS = 10  #: server → client settings (the server's protocol version)


#: "For different types of commands, unless mentioned below, this type of command should not and
#: cannot carry data." The spec mentions data for exactly these:
COMMANDS_WITH_DATA: frozenset[int] = frozenset(
    {
        Command.WASTE,
        Command.PSH,
        Command.SETTINGS,
        Command.ALERT,
        Command.UPDATE_PADDING_SCHEME,
        Command.SYNACK,
        Command.SERVER_SETTINGS,
    }
)

#: The header: command u8, streamId u32 BE, data length u16 BE.
FRAME_HEADER = struct.Struct(">BIH")
HEADER_SIZE = FRAME_HEADER.size  # == 7, Go's headerOverHeadSize
MAX_DATA = 0xFFFF  #: the largest data length the u16 field can carry
MAX_STREAM_ID = 0xFFFFFFFF


def command_name(command: int) -> str:
    """``Command`` name for a known byte, ``CMD<n>`` for an unknown one (never raises)."""
    try:
        return Command(command).name
    except ValueError:
        return f"CMD{command}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``command`` is a ``Command`` or, for an unknown byte, a plain int."""

    command: int
    stream_id: int
    data: bytes = b""
    #: bytes the peer put on a command that must carry none; the decoder dropped them
    skipped: int = 0


def encode_frame(command: int, stream_id: int, data: bytes = b"") -> bytes:
    """One frame on the wire. Raises LocalProtocolError for anything the spec forbids."""
    if not 0 <= command <= 0xFF:
        raise LocalProtocolError(f"command {command} does not fit in uint8")
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise LocalProtocolError(f"stream id {stream_id} does not fit in uint32")
    if len(data) > MAX_DATA:
        raise LocalProtocolError(f"{len(data)} bytes do not fit in one frame (max {MAX_DATA})")
    # [FRAME-NO-DATA] "this type of command should not and cannot carry data": Go readers do not
    # consume data of SYN, FIN and Heart*, so data there would desynchronise them (peers.md,
    # DESYNC HAZARD).
    if data and command not in COMMANDS_WITH_DATA:
        raise LocalProtocolError(f"{command_name(command)} must not carry data")
    return FRAME_HEADER.pack(command, stream_id, len(data)) + data


def encode_psh(stream_id: int, data: bytes | memoryview) -> bytes:
    """cmdPSH frames for ``data``, split every 65535 bytes (the u16 length cannot say more)."""
    n = len(data)
    if n <= MAX_DATA:  # the usual case: one frame, one concatenation
        return FRAME_HEADER.pack(Command.PSH, stream_id, n) + data
    parts = []
    view = memoryview(data)
    for start in range(0, n, MAX_DATA):
        chunk = view[start : start + MAX_DATA]
        parts.append(FRAME_HEADER.pack(Command.PSH, stream_id, len(chunk)))
        parts.append(chunk)
    return b"".join(parts)


def frame_psh_in_place(buf: bytearray | memoryview, stream_id: int, length: int) -> memoryview:
    """A cmdPSH frame built where its data already is: ``buf[HEADER_SIZE:HEADER_SIZE+length]``.

    Writes the header into ``buf[:HEADER_SIZE]`` and returns a view of the whole frame, so a
    relay can receive straight into the buffer and send it on without copying the data.
    """
    if not 0 <= length <= MAX_DATA:
        raise LocalProtocolError(f"{length} bytes do not fit in one frame (max {MAX_DATA})")
    FRAME_HEADER.pack_into(buf, 0, Command.PSH, stream_id, length)
    return memoryview(buf)[: HEADER_SIZE + length]


class Incomplete(enum.Enum):
    """Returned instead of a frame when the buffer does not yet hold a whole one."""

    NEED_DATA = "need more bytes"


NEED_DATA = Incomplete.NEED_DATA


class FrameDecoder:
    """Incremental frame decoder: ``feed(bytes)``, then ``next_frame()`` until NEED_DATA.

    Gives identical frames whether the bytes arrive whole or one at a time. It never raises on
    bad input: every 7 bytes are a valid header, and unknown commands are returned as ints for
    the session rules to judge.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of the first unread byte in _buf

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos == len(self._buf):
            # everything was consumed: restart the buffer instead of growing it
            self._buf.clear()
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as frames."""
        return len(self._buf) - self._pos

    def next_frame(self) -> Frame | Incomplete:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            return NEED_DATA
        command, stream_id, length = FRAME_HEADER.unpack_from(buf, pos)
        end = pos + HEADER_SIZE + length
        if len(buf) < end:
            return NEED_DATA
        known = _COMMANDS[command] if command < len(_COMMANDS) else command
        if command in COMMANDS_WITH_DATA:
            # through a memoryview: one copy (a bytearray slice would be a second)
            frame = Frame(known, stream_id, bytes(memoryview(buf)[pos + HEADER_SIZE : end]))
        else:
            # [FRAME-NO-DATA] data on a command that carries none (or an unknown one): skip it
            # (decisions.md D3)
            frame = Frame(known, stream_id, b"", skipped=length)
        if end > 4096 and end * 2 > len(buf):
            # drop consumed bytes once they are most of the buffer, so it stays small
            del buf[:end]
            self._pos = 0
        else:
            self._pos = end
        return frame

    def partial_frame(self) -> tuple[int, int, int, int] | None:
        """(command, stream_id, length, have) when the buffer holds the header of a frame but
        only ``have`` < ``length`` bytes of its data; None otherwise."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            return None
        command, stream_id, length = FRAME_HEADER.unpack_from(buf, pos)
        have = len(buf) - pos - HEADER_SIZE
        return (command, stream_id, length, have) if have < length else None

    def take_partial(self, into: bytearray | memoryview) -> int:
        """Move the partial frame out: copy the data bytes already here into the start of
        ``into``, forget the frame, and return how many were copied. The caller reads the rest
        of its data itself (a large cmdPSH is read straight into its own buffer this way)."""
        start = self._pos + HEADER_SIZE
        have = len(self._buf) - start
        into[:have] = memoryview(self._buf)[start:]
        self._buf.clear()
        self._pos = 0
        return have

    def frames(self) -> list[Frame]:
        """All complete frames now buffered."""
        out = []
        while (frame := self.next_frame()) is not NEED_DATA:
            out.append(frame)
        return out


_COMMANDS = tuple(Command)  # index = wire byte (the enum is dense from 0)
