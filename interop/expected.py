"""Cases whose result is not "pass", each explained in interop/expected.md with the peer's
own source as evidence. The interop tests assert these outcomes exactly: if such a case starts
to pass (the peer changed), the test says so and this table must be updated."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    outcome: str  #: "fail" or "unsupported-by-peer"
    why: str  #: one line; the long form is in expected.md


EXPECTED: dict[tuple[str, str, str], Expected] = {}
