"""Trace lines name each command as the spec does (SYN, FIN, PSH, SYNACK ...), not title-cased."""

from __future__ import annotations

import pytest

from anytls_ref.frame import Command, Frame
from anytls_ref.net.trace import TRACE_NAMES, describe
from anytls_ref.socksaddr import SocksAddr, encode_socksaddr


@pytest.mark.parametrize(
    "frame, line",
    [
        (Frame(Command.SYN, 1), "SYN sid=1"),
        (Frame(Command.FIN, 1), "FIN sid=1"),
        (Frame(Command.FIN, 3, skipped=5), "FIN sid=3 (+5B skipped)"),
        (Frame(Command.PSH, 1, b"hello"), "PSH sid=1 len=5"),
        (Frame(Command.WASTE, 0, bytes(30)), "Waste len=30"),
        (Frame(Command.SETTINGS, 0, b"v=2\nclient=x"), "Settings v=2 client=x"),
        (Frame(Command.SERVER_SETTINGS, 0, b"v=2"), "ServerSettings v=2"),
        (Frame(Command.SYNACK, 1), "SYNACK sid=1 ok"),
        (Frame(Command.SYNACK, 2, b"dial failed"), "SYNACK sid=2 error='dial failed'"),
        (Frame(Command.ALERT, 0, b"go away"), "Alert 'go away'"),
        (Frame(Command.UPDATE_PADDING_SCHEME, 0, b"stop=1"), "UpdatePadding 6B"),
        (Frame(Command.HEART_REQUEST, 0), "HeartReq sid=0"),
        (Frame(Command.HEART_RESPONSE, 0), "HeartResp sid=0"),
        (Frame(42, 7, skipped=3), "CMD42 sid=7 (+3B skipped)"),
    ],
)
def test_describe_uses_the_spec_names(frame, line):
    assert describe(frame) == line


def test_first_psh_shows_the_target_address():
    data = encode_socksaddr(SocksAddr("example.com", 443)) + b"GET"
    assert describe(Frame(Command.PSH, 1, data), first_psh=True) == \
        f"PSH sid=1 len={len(data)} addr=example.com:443"


def test_every_command_has_a_trace_name():
    assert set(TRACE_NAMES) == set(Command)
    assert "Syn" not in TRACE_NAMES.values() and "Fin" not in TRACE_NAMES.values()
