"""spec_notes/ stays true: every decision names tests that exist, every cited decision exists,
the section map lists every pure module, and the divergences table cites only decisions,
requirements, tests and probe checks that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = (ROOT / "spec_notes" / "decisions.md").read_text(encoding="utf-8")
DIVERGENCES = (ROOT / "spec_notes" / "divergences.md").read_text(encoding="utf-8")
TEST_REF = re.compile(r"`(tests/test_\w+\.py)::(test_\w+)`")


def decision_sections() -> dict[str, str]:
    """'D1' → the text of its section."""
    parts = re.split(r"^## (D\d+) — ", DECISIONS, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def missing_tests(text: str) -> list[str]:
    """The tests ``text`` names (file::function) that do not exist."""
    return [f"{file}::{name}" for file, name in TEST_REF.findall(text)
            if not (ROOT / file).exists() or name not in functions_in(ROOT / file)]


def test_decisions_are_numbered_d1_to_dn_without_gaps():
    numbers = [int(d[1:]) for d in decision_sections()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 13


def test_every_decision_has_spec_peers_ours_and_a_test():
    for number, text in decision_sections().items():
        for label in ("**Spec:**", "**Peers:**", "**Ours:**", "**Pinned by:**"):
            assert label in text, f"{number} lacks {label}"
        assert TEST_REF.search(text.split("**Pinned by:**")[1]), f"{number} names no test"


def test_every_decision_is_filed_once_under_a_spec_section_that_exists():
    spec = (ROOT / "spec_notes" / "anytls-protocol.md").read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip() for line in spec.splitlines() if line.startswith("#")}
    index = DECISIONS.split("## By spec section", 1)[1].split("\n## ", 1)[0]
    filed: list[str] = []
    for line in index.splitlines():
        if not line.startswith("| ") or line.startswith(("| spec section", "|---")):
            continue
        section, decisions = (cell.strip() for cell in line.strip("|").split("|"))
        # what the spec does not cover (share links, command lines) names its own document
        if not section.startswith("outside the spec: "):
            assert all(part in headings for part in section.split(" › ")), section
        filed += [d.strip() for d in decisions.split(",")]
    assert sorted(filed, key=lambda d: int(d[1:])) == list(decision_sections())


def test_every_named_test_exists():
    assert missing_tests(DECISIONS) == []


def test_every_decision_the_code_cites_is_written_down():
    known = set(decision_sections())
    cited = set()
    for path in (ROOT / "anytls_ref").rglob("*.py"):
        cited |= set(re.findall(r"decisions\.md (D\d+)", path.read_text(encoding="utf-8")))
        cited |= set(re.findall(r"\((D\d+)\)", path.read_text(encoding="utf-8")))
    assert cited - known == set()


def test_section_map_lists_every_module_that_implements_a_spec_section():
    readme = (ROOT / "spec_notes" / "README.md").read_text(encoding="utf-8")
    modules = [p for p in (ROOT / "anytls_ref").glob("*.py")
               if re.match(r'anytls_ref\.\w+ — spec "', ast.get_docstring(
                   ast.parse(p.read_text(encoding="utf-8"))) or "")]
    assert len(modules) >= 10
    for path in [*modules, ROOT / "anytls_ref" / "errors.py"]:
        assert f"`{path.name}`" in readme, path.name


# ---- divergences.md ---------------------------------------------------------------------------

#: The columns of the divergences table, in order (the peers are the pinned interop versions).
DIVERGENCE_COLUMNS = ["behaviour", "spec", "anytls-go v0.0.12", "sing-box 1.14.4", "mihomo v1.19.30",
                      "ssrlive anytls 0.3.2", "anytls-rs 0.5.4", "anytls_ref"]
DECISION_REF = re.compile(r"\bD(\d+)\b")
REQUIREMENT_REF = re.compile(r"\[([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\]")
PROBE_REF = re.compile(r"\bprobe (server|client)/([a-z0-9+-]*[a-z0-9+])")


def divergence_table() -> tuple[list[str], list[list[str]]]:
    """The header cells and the rows of the table under "## The table"."""
    section = DIVERGENCES.split("## The table", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], [row for row in cells[2:]]


def test_divergences_table_has_a_column_per_implementation_and_full_rows():
    header, rows = divergence_table()
    assert len(header) == len(DIVERGENCE_COLUMNS)
    for cell, expected in zip(header, DIVERGENCE_COLUMNS):
        assert cell.startswith(expected), (cell, expected)
    assert len(rows) >= 25
    for row in rows:
        assert len(row) == len(DIVERGENCE_COLUMNS), row[0]
        assert all(row), f"empty cell in {row[0]!r} (write ? where unknown)"


def test_every_divergence_row_names_our_decision_and_a_test():
    _, rows = divergence_table()
    for row in rows:
        ours = row[-1]
        assert DECISION_REF.search(ours) or REQUIREMENT_REF.search(ours), row[0]
        assert TEST_REF.search(ours), row[0]


def test_every_decision_requirement_test_and_probe_check_divergences_cites_exists():
    from anytls_ref.probe.client_checks import CLIENT_CHECK_NAMES
    from anytls_ref.probe.server_checks import CHECKS
    from anytls_ref.spec import REQUIREMENTS

    known_decisions = {int(d[1:]) for d in decision_sections()}
    cited = {int(n) for n in DECISION_REF.findall(DIVERGENCES)}
    assert cited and cited - known_decisions == set()

    requirement_ids = {r.id for r in REQUIREMENTS}
    cited_requirements = set(REQUIREMENT_REF.findall(DIVERGENCES))
    assert cited_requirements - requirement_ids == set()

    assert missing_tests(DIVERGENCES) == []

    checks = {"server": {c.name for c in CHECKS}, "client": set(CLIENT_CHECK_NAMES)}
    probes = PROBE_REF.findall(DIVERGENCES)
    assert probes
    assert [f"{role}/{name}" for role, name in probes if name not in checks[role]] == []


def test_divergences_has_open_questions_and_the_readme_links_every_note():
    questions = DIVERGENCES.split("## Open questions", 1)[1]
    assert len(re.findall(r"^\d+\. \*\*", questions, flags=re.M)) >= 10
    readme = (ROOT / "spec_notes" / "README.md").read_text(encoding="utf-8")
    for note in ("decisions.md", "divergences.md", "requirements.md", "anytls-protocol.md"):
        assert f"]({note})" in readme, note
