"""What the scripted peers (rawclient.py, rawserver.py) share: frames built by hand, the
read size that returns one TLS record, and expectations with deadlines.

Frames are built here with the bare header struct, not frame.encode_frame, so a caller can send
what the encoder (rightly) refuses to produce.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..frame import FRAME_HEADER

#: How long a single expectation waits unless told otherwise.
DEFAULT_TIMEOUT = 3.0
#: Bytes asked of a TLS socket per read: more than one TLS record (16 KiB), so each read returns
#: exactly one record (with the stdlib ``ssl`` module, each SSLSocket.recv returns the
#: plaintext of at most ONE record: OpenSSL's SSL_read never joins two).
RECORD_READ_SIZE = 1 << 16


class ExpectationFailed(AssertionError):
    """A scripted peer did not get what it expected (the message says what came instead).

    An AssertionError, so a test that uses the peers reads like any other failed assert; the
    probe turns it into a FAIL line.
    """


def frame(command: int, stream_id: int = 0, data: bytes = b"") -> bytes:
    """One frame, any command, any data (even where the spec forbids data)."""
    return FRAME_HEADER.pack(command, stream_id, len(data)) + data


def eventually(condition: Callable[[], object], timeout: float, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; raise ExpectationFailed if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise ExpectationFailed(f"{what}: not true within {timeout} s")
        time.sleep(0.01)
