"""``anytls-ref probe`` (anytls_ref/probe/): every check passes against our own server and client,
and a deliberately broken peer makes the matching check FAIL.

Faults are injected into our Server by swapping in a ServerRules subclass (the name
``anytls_ref.net.server.ServerRules``, which server.py builds its rules with), or by bending a
scripted RawServer; a broken client is our Client with one method disabled, or a RawClient talking
to the probe server directly.
The last tests run the probe against the installed Go peers (interop/probes.py) and assert the
checks peers.md says they pass.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from anytls_ref import rules as rules_mod
from anytls_ref.net import server as net_server
from anytls_ref.auth import encode_auth, password_hash
from anytls_ref.effects import CloseSession, Send
from anytls_ref.errors import Reason
from anytls_ref.frame import Command, encode_frame, encode_psh
from anytls_ref.net.client import Client
from anytls_ref.net.socks_client import socks5_connect
from anytls_ref.padding import DEFAULT
from anytls_ref.probe.client_checks import CLIENT_CHECK_NAMES, CLIENT_CHECKS
from anytls_ref.probe.client_probe import ClientProbe
from anytls_ref.probe.client_script import TARGET_ALERT, TARGET_ECHO, TARGET_REFUSED
from anytls_ref.probe.rawclient import RawClient
from anytls_ref.probe.rawserver import RawServer
from anytls_ref.probe.report import FAIL, INFO, PASS, CheckResult
from anytls_ref.probe.scripting import eventually, frame
from anytls_ref.probe.server_checks import CHECKS
from anytls_ref.probe.server_probe import run_server_probe
from anytls_ref.settings import ClientSettings
from anytls_ref.socksaddr import SocksAddr, encode_socksaddr
from anytls_ref.spec import BY_ID, SPEC_FILE

PASSWORD = "probe tests"
ROOT = Path(__file__).resolve().parent.parent


def by_name(results: list[CheckResult]) -> dict[str, str]:
    return {r.check: r.result for r in results}


def failed(results: list[CheckResult]) -> set[str]:
    return {r.check for r in results if r.result == FAIL}




# ---- the checks name their spec sections ---------------------------------------------------


def test_every_check_names_a_section_of_the_spec():
    headings = {m.group(1).strip() for m in re.finditer(
        r"^#+\s+(.*)$", (ROOT / SPEC_FILE).read_text(encoding="utf-8"), re.MULTILINE)}
    named = [(c.name, c.section, c.requirement) for c in (*CHECKS, *CLIENT_CHECKS)]
    assert len(CHECKS) >= 12
    for name, section, requirement in named:
        for part in section.split(" › "):  # "Client › Session › cmdSYN": three headings
            assert part in headings, f"{name}: {part!r} is no heading of the spec"
        if requirement is not None:
            assert BY_ID[requirement].section == section, name


# ---- probe server ----------------------------------------------------------------------------


def test_probe_server_passes_against_our_server(make_server):
    results = run_server_probe(make_server().address, PASSWORD, insecure=True)
    expected = {c.name: PASS for c in CHECKS} | {"wrong-password": INFO}
    assert by_name(results) == expected, [r for r in results if r.result != expected[r.check]]
    (wrong,) = [r for r in results if r.check == "wrong-password"]
    assert wrong.detail.startswith("closed the connection")


# Faults: a ServerRules subclass each, and the checks that must then FAIL (of those run).
ServerRules = rules_mod.ServerRules


class NoServerSettings(ServerRules):
    def _on_settings(self, f):
        return [e for e in super()._on_settings(f)
                if not (isinstance(e, Send) and e.frame[0] == Command.SERVER_SETTINGS)]


class ServerSettingsToV1(ServerRules):
    def _on_settings(self, f):
        effects = super()._on_settings(f)
        if ClientSettings.decode(f.data).version < 2:
            effects.append(Send(encode_frame(Command.SERVER_SETTINGS, 0, b"v=2")))
        return effects


class UpdateLast(ServerRules):
    def _on_settings(self, f):
        return sorted(super()._on_settings(f),  # ServerSettings (10) before Update (6)
                      key=lambda e: -e.frame[0] if isinstance(e, Send) else 0)


class NoUpdate(ServerRules):
    def _on_settings(self, f):
        return [e for e in super()._on_settings(f) if not (
            isinstance(e, Send) and e.frame[0] == Command.UPDATE_PADDING_SCHEME)]


class SynBeforeSettingsServed(ServerRules):
    def _on_syn_before_settings(self, f):
        self.state = rules_mod.State.ESTABLISHED
        return self._on_syn(f)


class NoSynackOnFailure(ServerRules):
    def stream_result(self, stream_id, error):
        effects = super().stream_result(stream_id, error)
        if error is None:
            return effects
        return [e for e in effects
                if not (isinstance(e, Send) and e.frame[0] == Command.SYNACK)]


class OneStreamOnly(ServerRules):  # what the ssrlive 0.3.x server does
    def _on_syn(self, f):
        if f.stream_id != 1:
            return self._alert_and_close(f"unsupported sid {f.stream_id}")
        return super()._on_syn(f)


class WasteIsFatal(ServerRules):
    def _on_waste(self, f):
        return [CloseSession(Reason.CLIENT_REJECTED, "waste")]


@pytest.mark.parametrize("rules, checks, must_fail", [
    (NoServerSettings, {"settings-v1", "settings-v2", "settings-v3"},
     {"settings-v2", "settings-v3"}),
    (ServerSettingsToV1, {"settings-v1", "settings-v2"}, {"settings-v1"}),
    (UpdateLast, {"settings-order", "padding-md5", "settings-v2"}, {"settings-order"}),
    (NoUpdate, {"settings-order", "padding-md5", "settings-v3"},
     {"settings-order", "padding-md5"}),
    (SynBeforeSettingsServed, {"syn-before-settings", "synack-ok"}, {"syn-before-settings"}),
    (NoSynackOnFailure, {"synack-ok", "synack-refused"}, {"synack-refused"}),
    (OneStreamOnly, {"sid-2-after-fin", "sid-1-again", "synack-ok"}, {"sid-2-after-fin"}),
    (WasteIsFatal, {"waste", "heartbeat"}, {"waste"}),
], ids=lambda x: x.__name__ if isinstance(x, type) else None)
def test_a_broken_server_fails_the_matching_check(make_server, monkeypatch, rules, checks,
                                                  must_fail):
    monkeypatch.setattr(net_server, "ServerRules", rules)
    results = run_server_probe(make_server().address, PASSWORD, insecure=True, only=checks)
    assert by_name(results).keys() == checks
    assert failed(results) == must_fail, [(r.check, r.detail) for r in results]


def test_a_heartbeat_answered_on_another_sid_fails(make_server):
    class WrongSid(RawServer):
        def on_frame(self, conn, f):
            if f.command == Command.HEART_REQUEST:
                conn.send(frame(Command.HEART_RESPONSE, f.stream_id + 1))

    with WrongSid(PASSWORD) as raw:
        (result,) = run_server_probe(raw.address, PASSWORD, insecure=True, only={"heartbeat"})
    assert result.result == FAIL
    assert result.detail == "cmdHeartResponse on sid 2, not the request's sid 1"


def test_probe_server_command_line(make_server):
    server = make_server()
    out = run_cli("probe", "server", f"127.0.0.1:{server.address[1]}", "-p", PASSWORD,
                  "--insecure", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["counts"] == {"PASS": len(CHECKS) - 1, "FAIL": 0, "INFO": 1}
    with RawServer(PASSWORD, version=1) as raw:  # a version-1 server: the v2 checks FAIL
        out = run_cli("probe", "server", f"127.0.0.1:{raw.address[1]}", "-p", PASSWORD,
                      "--insecure", "--only", "settings-v1", "--only", "settings-v2")
    assert out.returncode == 1
    assert re.search(r"settings-v1 .* PASS", out.stdout)
    assert re.search(r"settings-v2 .* FAIL .* no cmdServerSettings", out.stdout)
    assert out.stdout.rstrip().endswith("1 PASS, 1 FAIL, 0 INFO")


def test_probe_command_line_errors_are_one_line():
    for argv, code, words in [
        (["probe", "server", "nowhere", "-p", "x"], 2, "not HOST:PORT"),
        (["probe", "server", "127.0.0.1:1", "-p", "x", "--only", "nope"], 2, "--only"),
        (["probe", "server", f"127.0.0.1:{free_port()}", "-p", "x"], 1, "cannot connect"),
        (["probe", "client", "-l", "127.0.0.1:0", "--padding-scheme", "/nonexistent"], 2,
         "padding scheme"),
        (["probe", "client", "-l", "127.0.0.1:0", "--wait", "-1"], 2, "--wait"),
    ]:
        out = run_cli(*argv)
        lines = out.stderr.strip().splitlines()
        assert (out.returncode, len(lines)) == (code, 1), (argv, out.stderr)
        assert lines[0].startswith("anytls-ref: error: ") and words in lines[0], argv


# ---- probe client ----------------------------------------------------------------------------


def test_probe_client_passes_against_our_client(make_proxy):
    with ClientProbe(password=PASSWORD) as probe:
        inbound = make_proxy(probe.address)
        probe.drive(inbound.address)
        results = probe.evaluate()
        assert probe.notes == []
    assert by_name(results) == {name: PASS for name in CLIENT_CHECK_NAMES}, \
        [(r.check, r.detail) for r in results if r.result != PASS]


def http_get(socks: tuple[str, int], port: int, path: str) -> bytes:
    with socks5_connect(socks, ("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: probe\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_probe_client_with_a_person_making_the_requests(make_proxy):
    """No --socks: the probe prints what to do; the test does it, as curl would."""
    with ClientProbe(password=PASSWORD) as probe:
        text = probe.instructions("127.0.0.1:1080")
        for port in (TARGET_ECHO, TARGET_REFUSED, TARGET_ALERT):
            assert f"curl -x socks5h://127.0.0.1:1080 http://127.0.0.1:{port}/" in text
        inbound = make_proxy(probe.address)
        client = inbound.client
        assert http_get(inbound.address, TARGET_ECHO, "/first").startswith(b"HTTP/1.0 200 OK")
        eventually(lambda: len(client.idle_sessions()) == 1, 2.0, "session idle")
        assert b"stream 2" in http_get(inbound.address, TARGET_ECHO, "/second")
        eventually(lambda: len(client.idle_sessions()) == 1, 2.0, "session idle")
        for port in (TARGET_REFUSED, TARGET_ALERT):
            # the client answers SOCKS5 at once (decisions.md D34), so the failure is a
            # connection that ends without an answer
            assert http_get(inbound.address, port, "/") == b""
        eventually(lambda: probe.server.find("closed"), 2.0, "the alerted session closed")
        assert b"session 2, stream 1" in http_get(inbound.address, TARGET_ECHO, "/third")
        probe.wait_manual(timeout=5.0)  # returns at once: all five requests were made
        results = probe.evaluate()
    expected = {name: PASS for name in CLIENT_CHECK_NAMES} | {"synack-error": INFO}
    assert by_name(results) == expected, [(r.check, r.detail) for r in results]


def test_a_client_that_ignores_padding_updates_fails_that_check(make_proxy, monkeypatch):
    monkeypatch.setattr(Client, "update_padding_scheme", lambda self, raw, label: None)
    with ClientProbe(password=PASSWORD) as probe:
        probe.drive(make_proxy(probe.address).address)
        results = probe.evaluate()
    assert failed(results) == {"padding-update"}
    (update,) = [r for r in results if r.check == "padding-update"]
    assert update.detail.startswith(f"session 2: padding-md5 {DEFAULT.md5}, not the updated")
    assert "padding0 of 30 bytes, outside line 0: 45-45" in update.detail


def test_an_authentication_split_over_records_and_a_missing_syn_are_reported():
    """A hand-driven client: hash and padding0 in two records, then a stream without cmdSYN
    (ssrlive's client) — the probe server still serves it, and says what was wrong."""
    with ClientProbe(password=PASSWORD) as probe:
        with RawClient(probe.address) as peer:
            auth = encode_auth(password_hash(PASSWORD), 30)
            peer.send_raw(auth[:32])
            peer.send_raw(auth[32:])
            settings = ClientSettings(2, "split/1", DEFAULT.md5).encode()
            address = encode_socksaddr(SocksAddr("127.0.0.1", TARGET_ECHO))
            peer.send_raw(encode_frame(Command.SETTINGS, 0, settings) + encode_psh(1, address))
            peer.read_until(lambda f: f.command == Command.SYNACK)  # served all the same
            peer.send_data(1, b"hi")
            assert peer.recv_data(1, 2) == b"hi"
        results = {r.check: r for r in probe.evaluate()}
    assert results["auth-record"].result == FAIL
    assert "came in 2 TLS records (32/32 B)" in results["auth-record"].detail
    assert results["settings-first"].result == PASS
    assert results["syn-opens-stream"].result == FAIL
    assert results["packet-1"].result == FAIL  # Settings + PSH, no SYN


def test_probe_client_command_line_drives_our_client(make_proxy):
    port = free_port()
    inbound = make_proxy(("127.0.0.1", port))  # connects on its first request
    out = run_cli("probe", "client", "-l", f"127.0.0.1:{port}", "-p", PASSWORD,
                  "--socks", f"127.0.0.1:{inbound.address[1]}", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["counts"] == {"PASS": len(CLIENT_CHECK_NAMES), "FAIL": 0, "INFO": 0}
    assert "making the traffic through SOCKS5" in out.stderr


# ---- the Go peers (interop) ------------------------------------------------------------------

#: What peers.md says of each Go peer, as probe results: every other check must PASS.
#: Servers: wrong password → silent close (INFO). mihomo sends SYNACK before dialing, so a
#: refused dial arrives as an empty SYNACK and a FIN (INFO). Clients: Go updates a process-wide
#: padding scheme, which the running session reads too (packets-2+ INFO).
GO_PEERS = ["anytls-go", "sing-box", "mihomo"]
NOT_PASS = {
    ("anytls-go", "server"): {"wrong-password": INFO},
    ("sing-box", "server"): {"wrong-password": INFO},
    ("mihomo", "server"): {"wrong-password": INFO, "synack-refused": INFO},
    ("anytls-go", "client"): {"packets-2+": INFO},
    ("sing-box", "client"): {"packets-2+": INFO},
    ("mihomo", "client"): {"packets-2+": INFO},
}


@pytest.mark.interop
@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("impl", GO_PEERS)
def test_probe_against_a_go_peer(impl, role, tmp_path, installed_peer):
    from interop.probes import probe_client_of, probe_server_of

    installed_peer(impl)
    if role == "server":
        results, notes = probe_server_of(impl, tmp_path), []
    else:
        results, notes = probe_client_of(impl, tmp_path)
    names = [c.name for c in CHECKS] if role == "server" else CLIENT_CHECK_NAMES
    expected = {name: PASS for name in names} | NOT_PASS[impl, role]
    assert by_name(results) == expected, ([(r.check, r.detail) for r in results
                                           if r.result != expected[r.check]], notes)


# ---- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anytls_ref", *argv], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
