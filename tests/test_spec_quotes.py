"""Spec quotes in the code are the spec's own words, wrapped evenly.

Every quoted string tagged with a requirement id in anytls_ref/ must occur verbatim in the pinned
spec text (spec_notes/anytls-protocol.md), and the comment that holds it must be filled evenly.

What counts as a tagged quote (the grammar this test reads):

* A tag is ``[ID]`` as spec_report.TAG reads it (upper-case words joined by hyphens). Tags are
  read in comments (``#`` and ``#:``) and in string statements (docstrings) of anytls_ref/**.py.
* A block is the unit a quote lives in: a comment plus the whole-line comments directly below it
  in the same column (a comment in another column or after code, a blank line or a code line
  starts a new block), or one paragraph of a docstring.
* A tag governs the text after it up to the next tag or the end of its block. Every
  double-quoted piece of that text is a spec quote; the words outside quotes are the code's own
  and are not checked, so ``[ID] "a" ... "b" (why)`` checks "a" and "b".
* A ``"`` opens a quote after the start, a space or one of ``([{`` when a non-space follows;
  it closes a quote after a non-space when the end or a non-alphanumeric character follows.
  Quotes nest, so a sentence that itself holds quoted words is quoted as it stands
  (``"... is put into the "idle session pool""``). A quote still open at the end of its block
  is an error: that is a quote split across two statements.
* Inside a quote, ``...`` marks an elision: its pieces must occur in that order in one paragraph
  of the spec. Without one, the whole quote must occur in one paragraph.

Normalisation, and nothing else: runs of whitespace become one space on both sides (a comment
wraps where the spec does not), and the spec's markdown is read through ``spec.plain`` (a link
keeps its label, ``**`` and backticks go). Case and punctuation must match.

Even wrapping: in a block of two or more lines that holds a tagged quote, every line but the last
must reach at least 75 % of the column the block's longest line reaches (indentation and any code
before a trailing comment count).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from anytls_ref.spec import SPEC_FILE, plain
from anytls_ref.tools.spec_report import TAG

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "anytls_ref"
RAGGED_BELOW = 0.75  #: a non-last line shorter than this share of the longest is ragged
ELISION = re.compile(r"\s*(?:\.\.\.|…)\s*")


@dataclass
class Block:
    line: int  #: first line (1-based) in the file
    physical: list[str]  #: the source lines, as written (for the wrapping check)
    text: str  #: the comment or docstring text, lines joined by spaces


def comment_blocks(source: str) -> list[Block]:
    """Comments, each with the whole-line comments directly below it in the same column."""
    lines = source.splitlines()
    blocks: list[Block] = []
    last_column = -1  # the column of the last comment's "#"
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        row, column = token.start
        text = token.string.removeprefix("#").removeprefix(":").strip()
        whole_line = not lines[row - 1][:column].strip()
        last = blocks[-1] if blocks else None
        if (whole_line and last and last.line + len(last.physical) == row
                and column == last_column):
            last.physical.append(lines[row - 1])
            last.text += " " + text
        else:
            blocks.append(Block(row, [lines[row - 1]], text))
        last_column = column
    return blocks


def docstring_blocks(source: str) -> list[Block]:
    """The paragraphs of every string statement (module, class and function docstrings, and
    ``#:``-style attribute strings)."""
    lines = source.splitlines()
    blocks: list[Block] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            continue
        # line i of a triple-quoted string is on source line lineno + i
        paragraph: list[tuple[int, str]] = []
        for row, body in enumerate([*node.value.value.splitlines(), ""], start=node.lineno):
            if body.strip():
                paragraph.append((row, body.strip()))
            elif paragraph:
                blocks.append(Block(paragraph[0][0], [lines[r - 1] for r, _ in paragraph],
                                    " ".join(text for _, text in paragraph)))
                paragraph = []
    return blocks


def quotes_in(text: str) -> tuple[list[str], list[str]]:
    """The outermost double-quoted pieces of ``text``, and problems (a quote left open, a
    ``"`` that neither opens nor closes)."""
    quotes: list[str] = []
    problems: list[str] = []
    depth = start = 0
    for at, char in enumerate(text):
        if char != '"':
            continue
        before = text[at - 1] if at else " "
        after = text[at + 1] if at + 1 < len(text) else ""
        if (before.isspace() or before in "([{") and after and not after.isspace():
            if depth == 0:
                start = at + 1
            depth += 1
        elif not before.isspace() and not after.isalnum() and depth:
            depth -= 1
            if depth == 0:
                quotes.append(text[start:at])
        else:
            problems.append(f"a stray quote mark: ...{text[max(0, at - 20):at + 20]}...")
    if depth:
        problems.append(f"a quote is not closed in its comment: \"{text[start:]}")
    return quotes, problems


def tagged_quotes(text: str) -> tuple[list[str], list[str]]:
    """The quotes governed by a tag in one block's text, and the problems found reading them."""
    tags = list(TAG.finditer(text))
    quotes: list[str] = []
    problems: list[str] = []
    for tag, following in zip(tags, [*tags[1:], None]):
        found, trouble = quotes_in(text[tag.end():following.start() if following else None])
        quotes += found
        problems += trouble
    return quotes, problems


def spec_paragraphs(markdown: str) -> list[str]:
    return [plain(p) for p in re.split(r"\n\s*\n", markdown) if p.strip()]


def in_spec(quote: str, paragraphs: list[str]) -> bool:
    """Does ``quote`` (pieces around ``...`` in order) occur in one paragraph of the spec?"""
    pieces = [" ".join(p.split()) for p in ELISION.split(quote) if p.strip()]
    for paragraph in paragraphs:
        at = 0
        for piece in pieces:
            at = paragraph.find(piece, at)
            if at < 0:
                break
            at += len(piece)
        else:
            return bool(pieces)
    return False


def ragged_line(physical: list[str]) -> str | None:
    """The first line but the last that stops short of the others, described; else None."""
    widths = [len(line.rstrip()) for line in physical]
    for number, width in enumerate(widths[:-1], start=1):
        if width < RAGGED_BELOW * max(widths):
            return (f"ragged wrapping: line {number} of {len(widths)} ends at column {width}, "
                    f"under {RAGGED_BELOW:.0%} of the longest ({max(widths)})")
    return None


def check_source(path: str, source: str, paragraphs: list[str]) -> tuple[int, list[str]]:
    """(how many tagged quotes ``source`` holds, one line per problem)."""
    count = 0
    problems: list[str] = []
    for block in [*comment_blocks(source), *docstring_blocks(source)]:
        quotes, trouble = tagged_quotes(block.text)
        where = f"{path}:{block.line}"
        problems += [f"{where}: {t}" for t in trouble]
        for quote in quotes:
            count += 1
            if not in_spec(quote, paragraphs):
                problems.append(f"{where}: not in {SPEC_FILE}: \"{quote}\"")
        ragged = ragged_line(block.physical) if quotes or trouble else None
        if ragged:
            problems.append(f"{where}: {ragged}")
    return count, problems


PARAGRAPHS = spec_paragraphs((ROOT / SPEC_FILE).read_text(encoding="utf-8"))


def test_every_tagged_quote_is_verbatim_in_the_spec_and_wrapped_evenly():
    count = 0
    problems: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found, trouble = check_source(path.relative_to(ROOT).as_posix(),
                                      path.read_text(encoding="utf-8"), PARAGRAPHS)
        count += found
        problems += trouble
    assert count >= 40  # the scan found the quotes (49 when this was written)
    assert not problems, "\n".join(problems)


# The checker must be able to fail: each of these is wrong in one way. (The backticks in the
# spec text below are markdown the normalisation drops.)

SPEC = spec_paragraphs("""\
The client must immediately send `cmdSettings` when starting a new session.

When the Stream is closed, the Session is put into the "idle session pool", and the idle start
time of the Session is set to now.
""")


def problems_of(source: str) -> list[str]:
    return check_source("x.py", source, SPEC)[1]


def test_a_quote_that_is_the_spec_passes_after_normalising_whitespace_and_markdown():
    source = ('# [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings\n'
              '# when starting a new session." and more words of ours\n')
    assert check_source("x.py", source, SPEC) == (1, [])
    docstring = ('def f():\n    """Summary.\n\n'
                 '    Sends [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings\n'
                 '    when starting a new session."\n    """\n')
    assert check_source("x.py", docstring, SPEC) == (1, [])


def test_nested_quotes_and_elisions_are_read_as_one_quote():
    source = ('# [REUSE-RETURN-IDLE] "the Session is put into the "idle session pool"" and\n'
              '# [REUSE-RETURN-IDLE] "When the Stream is closed ... set to now." (why)\n')
    assert check_source("x.py", source, SPEC) == (2, [])


def test_a_wrong_quote_fails():
    wrong = '# [SESS-SETTINGS-FIRST] "The client must send cmdSettings"\n'
    assert problems_of(wrong) == ['x.py:1: not in spec_notes/anytls-protocol.md: '
                                  '"The client must send cmdSettings"']
    # elided pieces out of order
    assert problems_of('x = 1  # [REUSE-RETURN-IDLE] "set to now ... When the Stream"\n')
    # a quote in a docstring is checked too
    assert problems_of('def f():\n    """Does [SESS-SETTINGS-FIRST] "The client may send"."""\n')


def test_a_ragged_quote_fails():
    source = ('    # [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings when\n'
              '    # starting\n'
              '    # a new session."\n')
    assert problems_of(source) == ["x.py:1: ragged wrapping: line 2 of 3 ends at column 14, "
                                   "under 75% of the longest (78)"]
    # the last line may be short
    assert problems_of(source.replace("starting\n    # a", "starting a")) == []


def test_a_quote_split_across_two_statements_fails():
    source = ('if x:  # [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings\n'
              '    y = 1  # when starting a new session."\n')
    assert any("not closed" in p for p in problems_of(source))
    # continued below a comment after code, in another column: two blocks, the first one open
    source = ('if x:  # [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings\n'
              '    # when starting a new session."\n'
              '    y = 1\n')
    assert any("not closed" in p for p in problems_of(source))
