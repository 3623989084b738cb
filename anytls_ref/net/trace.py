"""Frame trace: one log line per frame (``--trace``), for reading the protocol as it runs.

    sess 1 pkt 1 → rec 262B  Settings v=3 client=anytls-ref/0.1.0 … | SYN sid=1 | PSH sid=1 len=11 …
    sess 1       ← 19B       ServerSettings v=3
    conn 1       ← 64B       Auth padding0=30          (server side: the authentication)

Outgoing lines show each TLS record a write became (the packet number while padding is active)
and the frames that end in it; incoming lines show each frame. Off by default; when off the
session never calls in here.
"""

from __future__ import annotations

import logging

from ..auth import AUTH_OVERHEAD
from ..frame import NEED_DATA, Command, Frame, FrameDecoder, command_name, HEADER_SIZE
from ..settings import decode_alert, parse_kv
from ..socksaddr import decode_socksaddr

log = logging.getLogger("anytls_ref.trace")


#: The name each command has in a trace line (the spec's names, shortened where long).
TRACE_NAMES: dict[int, str] = {
    Command.WASTE: "Waste",
    Command.SYN: "SYN",
    Command.PSH: "PSH",
    Command.FIN: "FIN",
    Command.SETTINGS: "Settings",
    Command.ALERT: "Alert",
    Command.UPDATE_PADDING_SCHEME: "UpdatePadding",
    Command.SYNACK: "SYNACK",
    Command.HEART_REQUEST: "HeartReq",
    Command.HEART_RESPONSE: "HeartResp",
    Command.SERVER_SETTINGS: "ServerSettings",
}


def describe(frame: Frame, *, first_psh: bool = False) -> str:
    """A short human summary of one frame."""
    name = TRACE_NAMES.get(frame.command) or command_name(frame.command)  # CMD<n> if unknown
    if frame.command == Command.WASTE:
        return f"Waste len={len(frame.data)}"
    if frame.command in (Command.SETTINGS, Command.SERVER_SETTINGS):
        # an md5 is shortened to 8 hex digits so a line fits 80 columns
        items = " ".join(f"{k}={v[:8] + '…' if k == 'padding-md5' and len(v) > 8 else v}"
                         for k, v in parse_kv(frame.data).items())
        return f"{name} {items}"
    if frame.command == Command.ALERT:
        return f"Alert {decode_alert(frame.data)!r}"
    if frame.command == Command.UPDATE_PADDING_SCHEME:
        return f"UpdatePadding {len(frame.data)}B"
    if frame.command == Command.SYNACK:
        return f"SYNACK sid={frame.stream_id}" + (
            f" error={decode_alert(frame.data)!r}" if frame.data else " ok")
    if frame.command == Command.PSH:
        text = f"PSH sid={frame.stream_id} len={len(frame.data)}"
        if first_psh:
            try:
                result = decode_socksaddr(frame.data)
            except Exception:  # a trace never fails the session
                result = NEED_DATA
            if result is not NEED_DATA:
                text += f" addr={result[0]}"
        return text
    extra = f" (+{frame.skipped}B skipped)" if frame.skipped else ""
    return f"{name} sid={frame.stream_id}{extra}"


class Tracer:
    """Per-session trace state (it decodes our own outgoing bytes to name their frames)."""

    def __init__(self) -> None:
        self._out = FrameDecoder()
        self._syn_seen: set[int] = set()  # streams whose first PSH (the address) is next

    def _summary(self, frame: Frame) -> str:
        first = frame.command == Command.PSH and frame.stream_id in self._syn_seen
        if frame.command == Command.SYN:
            self._syn_seen.add(frame.stream_id)
        elif first:
            self._syn_seen.discard(frame.stream_id)
        return describe(frame, first_psh=first)

    def records(self, label: str, packet: int | None, records: list[bytes]) -> None:
        pkt = f"pkt {packet}" if packet is not None else ""
        for record in records:
            self._out.feed(record)
            frames = [self._summary(f) for f in self._out.frames()]
            if self._out.buffered:  # the record ends inside a frame: the next record goes on
                frames.append("…")
            # one line per frame: the record's size on the first, "+" for the others in it
            log.info("%s %-6s → rec %-5s %s", label, pkt, f"{len(record)}B",
                     frames[0] if frames else "(part of a frame)")
            for more in frames[1:]:
                log.info("%s %-6s   %-9s + %s", " " * len(label), "", "", more)

    def auth_in(self, label: str, padding0_length: int) -> None:
        """Server: the authentication request (packet 0) passed; show its padding0."""
        size = AUTH_OVERHEAD + padding0_length
        log.info("%s %-6s ← %-9s Auth padding0=%d", label, "", f"{size}B", padding0_length)

    def frame_in(self, label: str, frame: Frame) -> None:
        size = HEADER_SIZE + len(frame.data) + frame.skipped
        log.info("%s %-6s ← %-9s %s", label, "", f"{size}B", self._summary(frame))
