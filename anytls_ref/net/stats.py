"""Counters the server and the client keep (ServerStats, ClientStats): plain numbers that many
threads add to, read by tests, the interop suite and the demo."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Counters:
    """A dataclass of int counters; ``add`` bumps several at once, under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
