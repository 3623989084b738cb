"""``anytls-ref probe server --target-host``: where the probe's echo and refused targets listen,
and so the address the server under test is asked to dial (a server on another machine cannot
reach the probe's 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from anytls_ref.probe.report import PASS
from anytls_ref.probe.server_checks import CHECKS
from anytls_ref.probe.server_probe import ServerProbe, run_server_probe

PASSWORD = "probe target host"
ROOT = Path(__file__).resolve().parent.parent


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anytls_ref", *argv], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_bind(host: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((host, 0))
    except OSError:
        return False
    return True


def test_probe_server_with_target_host_127_0_0_1(make_server):
    server = make_server()
    out = run_cli("probe", "server", f"127.0.0.1:{server.address[1]}", "-p", PASSWORD,
                  "--insecure", "--target-host", "127.0.0.1", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["counts"] == {"PASS": len(CHECKS) - 1, "FAIL": 0, "INFO": 1}


@pytest.mark.skipif(not can_bind("127.0.0.2"), reason="127.0.0.2 is not a local address here")
def test_the_targets_listen_and_are_dialled_on_the_target_host(make_server):
    # Linux answers on all of 127/8: a stream check passes only if the target listens on
    # 127.0.0.2 AND the SYN asks the server for 127.0.0.2 (nothing listens on 127.0.0.1:port)
    server = make_server()
    with ServerProbe(server.address, PASSWORD, insecure=True, target_host="127.0.0.2") as probe:
        assert probe.echo.address[0] == "127.0.0.2"
        assert probe.target == ("127.0.0.2", probe.echo.address[1])
    results = run_server_probe(server.address, PASSWORD, insecure=True, target_host="127.0.0.2",
                               only={"synack-ok", "synack-refused", "frame-64k"})
    assert {r.check: r.result for r in results} == {
        "synack-ok": PASS, "synack-refused": PASS, "frame-64k": PASS}, results


@pytest.mark.parametrize("value, words", [
    ("nowhere.example", "argument --target-host: 'nowhere.example' is not an IP address"),
    ("", "is not an IP address"),
    ("0.0.0.0", "argument --target-host: 0.0.0.0 is no address a server can dial"),
    ("::", "is no address a server can dial"),
    ("192.0.2.1", "cannot listen on --target-host 192.0.2.1"),  # TEST-NET-1: not ours
])
def test_a_bad_target_host_is_one_line_and_exit_2(value, words):
    if value == "192.0.2.1" and can_bind(value):
        pytest.skip("this machine has 192.0.2.1")
    out = run_cli("probe", "server", f"127.0.0.1:{free_port()}", "-p", "x", "--insecure",
                  "--target-host", value)
    lines = out.stderr.strip().splitlines()
    assert (out.returncode, len(lines)) == (2, 1), out.stderr
    assert lines[0].startswith("anytls-ref: error: ") and words in lines[0], lines[0]
    assert out.stdout == ""


def test_the_default_target_host_is_127_0_0_1(make_server):
    with ServerProbe(make_server().address, PASSWORD, insecure=True) as probe:
        assert probe.target == ("127.0.0.1", probe.echo.address[1])
        assert probe.echo.address[0] == "127.0.0.1"
