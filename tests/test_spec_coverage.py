"""The requirement catalogue (anytls_ref/spec.py) is complete, linked and covered.

* every MUST has at least one test marked ``@pytest.mark.spec("ID")`` and one ``# [ID]`` code
  tag; the listing of every MUST with its code and tests is printed;
* every marker and every code tag names a catalogued id;
* every quoted sentence is in the pinned spec text, and every normative word of that text falls
  inside a catalogued or a NOT_CATALOGUED sentence (the walk is complete);
* spec_notes/requirements.md is what ``python -m anytls_ref.tools.spec_report --markdown``
  writes now.

Markers are found by reading the test files (anytls_ref.tools.spec_report), not from this pytest
run's items, so the answer is the same when only this file runs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from anytls_ref.tools import spec_report
from anytls_ref.spec import (
    BY_ID,
    LEVELS,
    NORMATIVE_WORDS,
    NOT_CATALOGUED,
    REQUIREMENTS,
    SPEC_FILE,
    SPEC_SHA256,
    SPEC_VERSION,
    plain,
)

ROOT = Path(__file__).resolve().parent.parent
MUSTS = [r for r in REQUIREMENTS if r.level == "MUST"]


@pytest.fixture(scope="module")
def links() -> spec_report.Links:
    return spec_report.collect(ROOT)


@pytest.fixture(scope="module")
def spec_text() -> str:
    return plain((ROOT / SPEC_FILE).read_text(encoding="utf-8"))


# ---- coverage ------------------------------------------------------------------------------


def test_every_must_has_a_test(links, capsys):
    with capsys.disabled():
        print(f"\n{len(MUSTS)} MUST requirements, their code and tests:")
        print(spec_report.must_listing(links))
    missing = [r.id for r in MUSTS if r.id not in links.tests]
    assert not missing, f"MUSTs without a @pytest.mark.spec test: {missing}"


def test_every_must_is_tagged_where_the_code_enforces_it(links):
    missing = [r.id for r in MUSTS if r.id not in links.code]
    assert not missing, f"MUSTs without a '# [ID]' comment in anytls_ref/: {missing}"


def test_every_marker_and_code_tag_names_a_catalogued_requirement(links):
    assert links.unknown == [], "unknown ids (typo, or add them to anytls_ref/spec.py)"


def test_requirements_md_is_up_to_date(links):
    path = ROOT / spec_report.OUTPUT
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == spec_report.render_markdown(links), (
        f"{spec_report.OUTPUT} is stale: run  python -m anytls_ref.tools.spec_report --markdown")


# ---- the catalogue itself ----------------------------------------------------------------------


def test_ids_are_unique_and_well_formed():
    ids = [r.id for r in REQUIREMENTS]
    assert len(ids) == len(set(ids)) == len(BY_ID)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)+", i) for i in ids)
    assert {r.level for r in REQUIREMENTS} == set(LEVELS)


def test_the_pinned_spec_is_the_one_the_catalogue_was_walked_from():
    raw = (ROOT / SPEC_FILE).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SPEC_SHA256, (
        "the spec text changed: walk it again (anytls_ref/spec.py) and update SPEC_SHA256")
    assert raw.decode().splitlines()[0] == SPEC_VERSION


@pytest.mark.parametrize("item", [*REQUIREMENTS, *NOT_CATALOGUED],
                         ids=lambda i: getattr(i, "id", None) or i.text[:40])
def test_every_quote_is_spec_text_word_for_word(item, spec_text):
    assert spec_text.count(plain(item.text)) == 1


def test_every_normative_word_of_the_spec_is_in_a_listed_sentence(spec_text):
    spans = []
    for item in [*REQUIREMENTS, *NOT_CATALOGUED]:
        start = spec_text.find(plain(item.text))
        spans.append((start, start + len(plain(item.text))))
    stray = [spec_text[max(0, m.start() - 60) : m.end() + 20]
             for m in NORMATIVE_WORDS.finditer(spec_text)
             if not any(a <= m.start() and m.end() <= b for a, b in spans)]
    assert stray == [], "sentences with a normative word that are neither catalogued nor listed"


def test_levels_follow_the_keyword():
    for req in REQUIREMENTS:
        word = plain(req.keyword).lower()
        if word in ("must", "needs to", "required", "should not and cannot"):
            assert req.level == "MUST", req.id
        elif word in ("should", "will"):
            assert req.level == "SHOULD", req.id
        elif word in ("may", "can", "has the right to", "optional"):
            assert req.level == "MAY", req.id
        # imperatives and rule steps say why in the keyword itself
        assert req.keyword, req.id


# ---- the scanners (so the checks above can fail) ----------------------------------------------


def test_the_marker_scanner_finds_every_form_a_marker_takes():
    source = '''
import pytest
from pytest import mark
pytestmark = [pytest.mark.spec("REUSE-IMPLEMENT")]

@pytest.mark.spec("SESS-SETTINGS-FIRST")
def test_a():
    pass

@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.spec("FRAME-NO-DATA"))])
def test_b(x):
    pass

@mark.spec("NO-SUCH-ID")
class TestC:
    def test_d(self):
        pass

def helper():  # not a test: never counted
    pytest.mark.spec("PARAM-PASSWORD")
'''
    links = spec_report.Links()
    spec_report.marked_tests({"tests/test_x.py": source}, links)
    assert links.tests == {
        "REUSE-IMPLEMENT": ["tests/test_x.py::test_a", "tests/test_x.py::test_b",
                            "tests/test_x.py::TestC::test_d"],
        "SESS-SETTINGS-FIRST": ["tests/test_x.py::test_a"],
        "FRAME-NO-DATA": ["tests/test_x.py::test_b"],
    }
    assert links.unknown == ["tests/test_x.py::TestC::test_d: spec('NO-SUCH-ID')"]


def test_the_code_scanner_reads_tags_in_comments_only():
    source = (
        'x = "[SESS-SETTINGS-FIRST] in a string is no tag"\n'
        "y = 1  # [FRAME-NO-DATA] \"...\"\n"
        "# [REUSE-CLEANUP] [REUSE-IMPLEMENT] two on one line\n"
        "# [NOT-A-REQ] a typo\n"
        "# [V6] no hyphen: not an id\n"
    )
    links = spec_report.Links()
    spec_report.code_tags({"anytls_ref/x.py": source}, links)
    assert links.code == {"FRAME-NO-DATA": ["anytls_ref/x.py:2"],
                          "REUSE-CLEANUP": ["anytls_ref/x.py:3"],
                          "REUSE-IMPLEMENT": ["anytls_ref/x.py:3"]}
    assert links.unknown == ["anytls_ref/x.py:4: [NOT-A-REQ]"]


def test_the_table_lists_each_requirement_with_its_code_and_tests():
    links = spec_report.Links(code={"SESS-SETTINGS-FIRST": ["anytls_ref/a.py:3"]},
                              tests={"SESS-SETTINGS-FIRST": ["tests/test_a.py::test_x"]})
    text = spec_report.render_markdown(links)
    row = next(line for line in text.splitlines() if line.startswith("| SESS-SETTINGS-FIRST |"))
    assert "| MUST (must) |" in row
    assert "The client must immediately send `cmdSettings`" in row
    assert row.endswith("| `anytls_ref/a.py:3` | `test_a.py::test_x` |")
    assert f"| MUST | {len(MUSTS)} | 1 | 1 |" in text
    for req in REQUIREMENTS:
        assert f"| {req.id} |" in text


def test_generator_writes_the_table_and_check_mode_reports_a_stale_one(tmp_path, monkeypatch,
                                                                       capsys):
    for folder in ("anytls_ref", "tests", "spec_notes"):
        (tmp_path / folder).mkdir()
    (tmp_path / "anytls_ref" / "x.py").write_text("# [SESS-SETTINGS-FIRST] \"...\"\n")
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n@pytest.mark.spec('SESS-SETTINGS-FIRST')\ndef test_x():\n    pass\n")
    target = tmp_path / spec_report.OUTPUT
    target.write_text("stale\n")
    monkeypatch.setattr(spec_report, "repo_root", lambda: tmp_path)
    assert spec_report.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert spec_report.main(["--markdown"]) == 0
    assert "`anytls_ref/x.py:1` | `test_x.py::test_x` |" in target.read_text()
    assert spec_report.main(["--check"]) == 0
    assert spec_report.main([]) == 0  # the MUST listing
    assert "SESS-SETTINGS-FIRST  (1 test)" in capsys.readouterr().out
