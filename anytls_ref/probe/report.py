"""Check results and how they are shown: one row per check, as a table or as JSON.

Each check names the spec section it tests. Where the check tests one catalogued requirement
(anytls_ref/spec.py), the section is taken from the catalogue, so the two cannot drift apart;
checks of something the catalogue lists as NOT_CATALOGUED (a wire format, a definition) name
their section directly.

    PASS  the implementation does what the section says
    FAIL  it does not (the detail says what it did instead)
    INFO  the spec leaves a choice, or the probe could not observe it; the detail says which
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from tabulate import tabulate

from ..spec import BY_ID

PASS, FAIL, INFO = "PASS", "FAIL", "INFO"


@dataclass(frozen=True)
class CheckResult:
    check: str  #: short name, e.g. "heartbeat"
    section: str  #: the spec section, e.g. "Client › Session › cmdHeartRequest"
    requirement: str | None  #: the catalogue id, e.g. "SESS-HEART-RESPOND", if there is one
    result: str  #: PASS, FAIL or INFO
    detail: str
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def section_of(requirement: str | None, section: str | None) -> str:
    """The section a check names: the catalogue's for ``requirement``, else ``section``."""
    if requirement is not None:
        return BY_ID[requirement].section
    if section is None:
        raise ValueError("a check needs a requirement id or a section")
    return section


@dataclass(frozen=True)
class Check:
    """One registered check: its name, what it tests, and the function that judges."""

    name: str
    requirement: str | None
    section: str
    run: Callable[..., tuple[str, str]]  #: → (PASS/FAIL/INFO, detail)


def registrar(checks: list[Check]) -> Callable:
    """The decorator that appends a check to ``checks`` (they run in that order):

        CHECKS: list[Check] = []
        check = registrar(CHECKS)

        @check("heartbeat", "SESS-HEART-RESPOND")      # a catalogued requirement, or
        @check("frame-64k", section="Client › Session")  # a section the catalogue omits
    """
    def check(name: str, requirement: str | None = None, section: str | None = None):
        def register(func: Callable[..., tuple[str, str]]) -> Callable[..., tuple[str, str]]:
            checks.append(Check(name, requirement, section_of(requirement, section), func))
            return func
        return register
    return check


def table(results: list[CheckResult], *, tablefmt: str = "simple") -> str:
    """The results as a table; the requirement id goes under its section."""
    rows = [[r.check, r.section + (f"\n[{r.requirement}]" if r.requirement else ""), r.result,
             r.detail] for r in results]
    return tabulate(rows, headers=["check", "spec section", "result", "detail"],
                    tablefmt=tablefmt, maxcolwidths=[None, 44, None, 64])


def counts(results: list[CheckResult]) -> dict[str, int]:
    return {status: sum(r.result == status for r in results) for status in (PASS, FAIL, INFO)}


def as_json(role: str, target: str, results: list[CheckResult],
            notes: list[str] | None = None) -> str:
    """``notes``: what went wrong with the probe's own traffic, if anything."""
    return json.dumps({"role": role, "target": target, "counts": counts(results),
                       "checks": [r.as_dict() for r in results], "notes": notes or []},
                      indent=1, ensure_ascii=False)


def exit_code(results: list[CheckResult]) -> int:
    """1 if any check FAILed, else 0."""
    return int(any(r.result == FAIL for r in results))
