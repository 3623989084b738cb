"""Decisions switch on typed reasons (errors.Reason), never on the words of an error.

The protocol carries two reasons only as free text (a cmdSYNACK error, a cmdAlert); those are read
in exactly one place, errors.reason_of_peer_text. Everywhere else under anytls_ref/ a test of the
form ``"words" in <error text>`` (or startswith/endswith/find on one) is a decision made on text,
and this test fails on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from anytls_ref.errors import Reason
from anytls_ref.net.inbound import SOCKS_REPLY, server_failure
from anytls_ref.errors import reason_of_peer_text

PACKAGE = Path(__file__).resolve().parent.parent / "anytls_ref"
#: names that hold the text of an error, a reply or an alert
TEXTY = ("exc", "err", "error", "alert", "message", "reason", "text", "words", "detail")
#: the one function allowed to read a peer's words
READER = ("errors.py", "reason_of_peer_text")


def _is_error_text(node: ast.AST) -> bool:
    """``str(x)``, or a name / attribute that says it holds error text (``exc``, ``x.alert``)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("lower", "upper", "casefold") and _is_error_text(node.func.value)
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return any(part in TEXTY for part in name.lower().split("_"))


def text_decisions(source: str, filename: str) -> list[str]:
    """Every place ``source`` decides on the words of an error, outside the allowed reader."""
    found = []
    tree = ast.parse(source)
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (filename, node.name) == READER:
            allowed.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)
                and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)
                and any(_is_error_text(c) for c in node.comparators)):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("startswith", "endswith", "find", "index")
                and _is_error_text(node.func.value)):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_decision_under_anytls_ref_reads_the_words_of_an_error():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += text_decisions(path.read_text(encoding="utf-8"), path.name)
    assert found == []


@pytest.mark.parametrize("source", [
    'if "no cmdSYNACK" in str(exc): pass',
    'if "unsupported sid" in session.alert: pass',
    'ok = "refused" not in error.lower()',
    'if message.startswith("dial"): pass',
])
def test_the_check_catches_a_decision_on_text(source):
    assert text_decisions(source, "x.py")


def test_the_check_lets_the_one_reader_and_ordinary_code_be():
    reader = 'def reason_of_peer_text(text, alert=False):\n    return "refused" in text'
    assert text_decisions(reader, "errors.py") == []
    assert text_decisions(reader, "other.py")
    assert text_decisions('family = 6 if ":" in host else 4', "x.py") == []


@pytest.mark.parametrize("text, reason", [
    ("dial tcp 10.0.0.1:80: connect: connection refused", Reason.REFUSED),  # Go
    ("dial 127.0.0.1:1: Connection refused", Reason.REFUSED),  # ours
    ("dial tcp 10.1.1.1:80: connect: network is unreachable", Reason.NETWORK_UNREACHABLE),
    ("dial tcp 10.1.1.1:80: i/o timeout", Reason.TIMED_OUT),
    ("dial 10.1.1.1:80: timed out", Reason.TIMED_OUT),
    ("dial tcp: lookup nowhere.invalid: no such host", Reason.HOST_UNREACHABLE),
    ("dial x: [Errno -2] Name or service not known", Reason.HOST_UNREACHABLE),
    ("dial tcp 10.1.1.1:80: connect: no route to host", Reason.HOST_UNREACHABLE),
    ("dial tcp 10.1.1.1:80: connect: permission denied", Reason.TARGET_FAILED),
    ("error", Reason.TARGET_FAILED),
    ("session stream limit reached", Reason.SESSION_BUSY),  # ssrlive 0.5.3
])
def test_a_synack_error_text_becomes_its_reason(text, reason):
    assert reason_of_peer_text(text) is reason


def test_an_alert_text_becomes_its_reason():
    assert reason_of_peer_text("unsupported sid 2", alert=True) is Reason.UNSUPPORTED_SID
    assert reason_of_peer_text("client did not send its settings", alert=True) \
        is Reason.PEER_ALERT


@pytest.mark.parametrize("exc, reason, code", [
    (ConnectionRefusedError(111, "Connection refused"), Reason.REFUSED, 0x05),
    (TimeoutError("timed out"), Reason.TIMED_OUT, 0x06),
    (OSError(101, "Network is unreachable"), Reason.NETWORK_UNREACHABLE, 0x03),
    (OSError(113, "No route to host"), Reason.HOST_UNREACHABLE, 0x04),
])
def test_an_unreachable_server_is_a_socks_reply_from_its_error_type(exc, reason, code):
    failure = server_failure(exc)
    assert failure.reason is reason and SOCKS_REPLY.get(failure.reason, 0x01) == code
    assert str(failure).startswith("server unreachable: ")
