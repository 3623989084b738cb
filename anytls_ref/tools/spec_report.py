"""anytls_ref.tools.spec_report — spec "anytls 0.3.2": requirement → code → tests, as a table.

Theory of operation: two scans of the source tree and one table.

* Code: a requirement is enforced where a comment carries its id in brackets, ``# [ID] "..."``.
  ``code_tags`` finds those comments in anytls_ref/ (file:line).
* Tests: a test pins a requirement when it carries ``@pytest.mark.spec("ID")`` (on the function,
  its class, the module's ``pytestmark`` or a ``pytest.param(..., marks=...)`` of its
  parametrize). ``marked_tests`` reads the test files with ``ast``, so the answer is the same
  whichever tests this pytest run collected.
* ``render_markdown`` turns both into the table in spec_notes/requirements.md.

The scanners take ``{path: text}`` and return plain data; only ``main`` reads files.

    python -m anytls_ref.tools.spec_report             list every MUST with its code and tests
    python -m anytls_ref.tools.spec_report --markdown  (re)write spec_notes/requirements.md
    python -m anytls_ref.tools.spec_report --check     exit 1 if spec_notes/requirements.md is stale
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..spec import BY_ID, LEVELS, NOT_CATALOGUED, REQUIREMENTS, SPEC_FILE, SPEC_VERSION

#: ``[ID]`` in a comment: upper-case words joined by hyphens (at least one hyphen).
TAG = re.compile(r"\[([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\]")
OUTPUT = "spec_notes/requirements.md"
#: Files that name ids without enforcing anything.
_NOT_CODE = {"anytls_ref/spec.py", "anytls_ref/tools/spec_report.py"}


@dataclass
class Links:
    """Where each id is enforced and tested, plus ids that are not in the catalogue."""

    code: dict[str, list[str]] = field(default_factory=dict)  #: id → ["path:line", ...]
    tests: dict[str, list[str]] = field(default_factory=dict)  #: id → ["path::test", ...]
    unknown: list[str] = field(default_factory=list)  #: "path:line: [ID]" for unknown ids


def code_tags(files: dict[str, str], links: Links) -> None:
    """Record every ``[ID]`` found in a ``#`` comment of ``files`` (path → source text)."""
    for path in sorted(files):
        if path in _NOT_CODE:
            continue
        for line_no, line in enumerate(files[path].splitlines(), start=1):
            hash_at = line.find("#")
            if hash_at < 0:
                continue
            for match in TAG.finditer(line, hash_at):
                req_id = match.group(1)
                where = f"{path}:{line_no}"
                if req_id in BY_ID:
                    links.code.setdefault(req_id, []).append(where)
                else:
                    links.unknown.append(f"{where}: [{req_id}]")


def _spec_ids(node: ast.AST) -> list[str]:
    """Ids of every ``<...>.mark.spec("ID")`` / ``mark.spec("ID")`` call inside ``node``."""
    ids = []
    for call in ast.walk(node):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "spec"):
            continue
        owner = call.func.value
        if not ((isinstance(owner, ast.Attribute) and owner.attr == "mark")
                or (isinstance(owner, ast.Name) and owner.id == "mark")):
            continue
        ids.extend(arg.value for arg in call.args
                   if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    return ids


def _module_marks(tree: ast.Module) -> list[str]:
    ids = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            ids.extend(_spec_ids(node.value))
    return ids


def marked_tests(files: dict[str, str], links: Links) -> None:
    """Record which tests in ``files`` (path → source of a test module) carry which ids."""
    for path in sorted(files):
        tree = ast.parse(files[path], filename=path)
        module_ids = _module_marks(tree)
        for node in tree.body:
            tests: list[tuple[str, list[str]]] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
                    "test"):
                tests.append((node.name, [i for d in node.decorator_list for i in _spec_ids(d)]))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                class_ids = [i for d in node.decorator_list for i in _spec_ids(d)]
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                            item.name.startswith("test"):
                        ids = [i for d in item.decorator_list for i in _spec_ids(d)]
                        tests.append((f"{node.name}::{item.name}", class_ids + ids))
            for name, ids in tests:
                for req_id in dict.fromkeys(module_ids + ids):  # unique, in order
                    where = f"{path}::{name}"
                    if req_id in BY_ID:
                        links.tests.setdefault(req_id, []).append(where)
                    else:
                        links.unknown.append(f"{where}: spec({req_id!r})")


def collect(root: Path) -> Links:
    """Scan the source tree under ``root`` (the repository)."""
    links = Links()
    code = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted((root / "anytls_ref").rglob("*.py"))}
    tests = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((root / "tests").rglob("test_*.py"))}
    code_tags(code, links)
    marked_tests(tests, links)
    return links


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _short(test: str) -> str:
    return test.removeprefix("tests/")


def render_markdown(links: Links) -> str:
    """The whole of spec_notes/requirements.md."""
    counts = {level: sum(r.level == level for r in REQUIREMENTS) for level in LEVELS}
    out = [
        "# Requirements: spec sentence → code → tests",
        "",
        "<!-- Generated by `python -m anytls_ref.tools.spec_report --markdown` from",
        "     anytls_ref/spec.py, the `[ID]` comments in anytls_ref/ and the",
        "     `@pytest.mark.spec(\"ID\")` markers in tests/. Do not edit:",
        "     tests/test_spec_coverage.py fails when it is stale. -->",
        "",
        f"Every normative sentence of the spec ({SPEC_VERSION}, pinned in `{SPEC_FILE}`) with the "
        "code line that enforces it (a comment `# [ID] \"...\"`) and the tests that pin it "
        "(`@pytest.mark.spec(\"ID\")`). How sentences were chosen and levels assigned: the "
        "docstring of `anytls_ref/spec.py`. Every MUST has at least one test "
        "(tests/test_spec_coverage.py).",
        "",
        "| level | requirements | with a code tag | with a test |",
        "|---|---|---|---|",
    ]
    for level in LEVELS:
        reqs = [r for r in REQUIREMENTS if r.level == level]
        out.append(f"| {level} | {counts[level]} | {sum(r.id in links.code for r in reqs)} | "
                   f"{sum(r.id in links.tests for r in reqs)} |")
    out.append(f"| all | {len(REQUIREMENTS)} | {sum(r.id in links.code for r in REQUIREMENTS)} | "
               f"{sum(r.id in links.tests for r in REQUIREMENTS)} |")
    section = None
    for req in REQUIREMENTS:
        if req.section != section:
            section = req.section
            out += ["", f"## {section}", "", "| id | level | spec text | code | tests |",
                    "|---|---|---|---|---|"]
        text = _cell(req.text)
        if req.note:
            text += f"<br>*{_cell(req.note)}*"
        code = "<br>".join(f"`{c}`" for c in links.code.get(req.id, [])) or "—"
        tests = "<br>".join(f"`{_short(t)}`" for t in links.tests.get(req.id, [])) or "—"
        out.append(f"| {req.id} | {req.level} ({_cell(req.keyword)}) | {text} | {code} | {tests} |")
    out += [
        "",
        "## Sentences not catalogued",
        "",
        "Sentences with a normative-looking word that state no requirement, and key sentences "
        "with none (wire formats, definitions), with where they live instead.",
        "",
        "| section | spec text | why not |",
        "|---|---|---|",
    ]
    for item in NOT_CATALOGUED:
        out.append(f"| {item.section} | {_cell(item.text)} | {_cell(item.reason)} |")
    return "\n".join(out) + "\n"


def must_listing(links: Links) -> str:
    """Every MUST with its code and tests, one block each (the coverage test prints this)."""
    lines = []
    for req in REQUIREMENTS:
        if req.level != "MUST":
            continue
        tests = links.tests.get(req.id, [])
        count = "1 test" if len(tests) == 1 else f"{len(tests)} tests"
        lines.append(f"{req.id}  ({count})")
        for where in links.code.get(req.id, []) or ["(no code tag)"]:
            lines.append(f"    code  {where}")
        for where in tests or ["(no test)"]:
            lines.append(f"    test  {_short(where)}")
    return "\n".join(lines)


def repo_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "tests").is_dir() or not (root / "spec_notes").is_dir():
        raise SystemExit("anytls-ref spec: run from a source checkout (tests/ and spec_notes/ "
                         "next to anytls_ref/)")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anytls_ref.tools.spec_report",
                                     description="requirement catalogue → code → tests")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--markdown", action="store_true", help=f"write {OUTPUT}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 if {OUTPUT} is stale")
    args = parser.parse_args(argv)
    root = repo_root()
    links = collect(root)
    for problem in links.unknown:
        print(f"unknown requirement id: {problem}", file=sys.stderr)
    target = root / OUTPUT
    if args.markdown:
        target.write_text(render_markdown(links), encoding="utf-8")
        print(f"wrote {OUTPUT} ({len(REQUIREMENTS)} requirements)")
        return 0
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != render_markdown(links):
            print(f"{OUTPUT} is stale: run python -m anytls_ref.tools.spec_report --markdown",
                  file=sys.stderr)
            return 1
        return 0
    print(must_listing(links))
    return 0


if __name__ == "__main__":
    from .pipes import run_into_pipe

    sys.exit(run_into_pipe(main))
