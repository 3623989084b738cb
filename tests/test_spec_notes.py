"""spec_notes/ stays true: every decision names tests that exist, every cited decision exists,
and the section map lists every pure module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = (ROOT / "spec_notes" / "decisions.md").read_text(encoding="utf-8")
TEST_REF = re.compile(r"`(tests/test_\w+\.py)::(test_\w+)`")


def decision_sections() -> dict[str, str]:
    """'D1' → the text of its section."""
    parts = re.split(r"^## (D\d+) — ", DECISIONS, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_decisions_are_numbered_d1_to_dn_without_gaps():
    numbers = [int(d[1:]) for d in decision_sections()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 13


def test_every_decision_has_spec_peers_ours_and_a_test():
    for number, text in decision_sections().items():
        for label in ("**Spec:**", "**Peers:**", "**Ours:**", "**Pinned by:**"):
            assert label in text, f"{number} lacks {label}"
        assert TEST_REF.search(text.split("**Pinned by:**")[1]), f"{number} names no test"


def test_every_named_test_exists():
    missing = []
    for file, name in TEST_REF.findall(DECISIONS):
        path = ROOT / file
        if not path.exists() or name not in functions_in(path):
            missing.append(f"{file}::{name}")
    assert missing == []


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
