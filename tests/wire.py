"""Frames read back from bytes a test captured (a Send effect, a session's writes)."""

from __future__ import annotations

from anytls_ref.frame import Frame, FrameDecoder


def decode_all(wire: bytes) -> list[Frame]:
    """Every frame in ``wire``, which must hold whole frames only."""
    decoder = FrameDecoder()
    decoder.feed(wire)
    frames = decoder.frames()
    assert decoder.buffered == 0, "a partial frame was left over"
    return frames
