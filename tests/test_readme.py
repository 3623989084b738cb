"""The README's frame-by-frame walk-through matches a real `demo --trace` run.

Sizes, ports and padding differ from run to run, and the client's and server's lines interleave
differently, so each side's incoming and outgoing frame sequences are compared by name only,
without Waste frames (a drawn record size may leave no room for one) and with consecutive PSH
frames counted once (a target may write its answer in one piece or two).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
LINE = re.compile(r"^\s*(conn|sess) \d+\s+(?:pkt \d+\s+)?(→ rec|←)\s+\d+B\s+(\S+)")
MORE = re.compile(r"^\s+\+ (\S+)")


def frame_sequences(lines: list[str]) -> dict[tuple[str, str], list[str]]:
    """(side, direction) → frame names in order; '+' lines belong to the record above."""
    seqs: dict[tuple[str, str], list[str]] = {}
    key = None
    for line in lines:
        if m := LINE.match(line):
            key = (m.group(1), m.group(2))
            _add(seqs.setdefault(key, []), m.group(3))
        elif (m := MORE.match(line)) and key is not None:
            _add(seqs[key], m.group(1))
    return seqs


def _add(seq: list[str], name: str) -> None:
    if name in ("Waste", "…") or (name == "PSH" and seq and seq[-1] == "PSH"):
        return
    seq.append(name)


def readme_trace() -> list[str]:
    text = README.read_text()
    block = text.split("<!-- trace:begin -->", 1)[1].split("<!-- trace:end -->", 1)[0]
    return block.splitlines()


def test_readme_trace_matches_a_real_demo_run() -> None:
    run = subprocess.run([sys.executable, "-m", "anytls_ref", "demo", "--trace"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    # the README shows the run up to the second GET's result line
    lines = lines[: next(i for i, l in enumerate(lines) if l.startswith("2. GET")) + 1]
    expected, actual = frame_sequences(readme_trace()), frame_sequences(lines)
    assert expected, "no trace found in README.md"
    for key in expected:
        # a side's last frame (e.g. a FIN) may come after the demo printed its result line
        want, got = expected[key], actual.get(key, [])[: len(expected[key])]
        assert got == want[: len(got)] and len(got) >= len(want) - 1, (key, want, got)
