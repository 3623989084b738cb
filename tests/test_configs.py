"""sing-box and mihomo config files (issue 17, decisions.md D43): ``-c FILE`` reads the anytls
inbound / listener (server) or outbound / proxy (client) into exact settings, names what it
does not support in one warning, refuses another security layer, and yields to the command
line's flags. The configs the interop harness writes for the real peers are in
tests/test_interop_configs.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from anytls_ref.__main__ import build_parser, main
from anytls_ref.cli.options import client_config, server_config
from anytls_ref.config.files import read_client_config, read_server_config
from anytls_ref.config.model import ClientOptions, ConfigError, ServerOptions, User
from anytls_ref.net.tls import write_self_signed

PIN_HEX = "ed78c4a8b0e81bff0640744b21682d146134c1b530181f01f21861910945f8ee"

SINGBOX_SERVER = {
    "log": {"level": "info"},
    "inbounds": [{"type": "anytls", "tag": "anytls-in", "listen": "127.0.0.1", "listen_port": 9443,
                  "users": [{"name": "alice", "password": "a-pw"},
                            {"name": "bob", "password": "b-pw"}],
                  "padding_scheme": ["stop=2", "0=30-30", "1=100-400"],
                  "tls": {"enabled": True, "certificate_path": "certs/c.pem",
                          "key_path": "/abs/k.pem"}}],
    "outbounds": [{"type": "direct", "tag": "direct"}],
}

SINGBOX_CLIENT = {
    "inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 2080}],
    "outbounds": [{"type": "anytls", "tag": "my-node", "server": "203.0.113.5", "server_port": 8443,
                   "password": "pw", "idle_session_check_interval": "30s",
                   "idle_session_timeout": "1m30s", "min_idle_session": 2,
                   "tls": {"enabled": True, "server_name": "cdn.example", "insecure": True,
                           "alpn": ["h2", "http/1.1"]}}],
    "route": {"final": "my-node"},
}

MIHOMO_SERVER = """\
listeners:
  - name: anytls-in
    type: anytls
    listen: 0.0.0.0
    port: 9443
    users:
      alice: 0123
      bob: yes
    certificate: ./cert.pem
    private-key: ./key.pem
    padding-scheme: |-
      stop=2
      0=30-30
      1=100-400
rules: [MATCH,DIRECT]
"""

MIHOMO_CLIENT = f"""\
mixed-port: 7890
allow-lan: true
bind-address: "*"
mode: rule
proxies:
  - name: "HK 01"
    type: anytls
    server: hk.example
    port: 443
    password: 0123
    sni: hk.example
    skip-cert-verify: false
    fingerprint: "{PIN_HEX}"
    alpn: [h2]
    udp: true
    idle-session-check-interval: 30
    idle-session-timeout: 45
    min-idle-session: 1
    disable-reuse: true
rules: [MATCH,HK 01]
"""


def test_singbox_server():
    assert read_server_config(json.dumps(SINGBOX_SERVER), "/etc/sb") == ServerOptions(
        listen=("127.0.0.1", 9443),
        users=(User("alice", "a-pw"), User("bob", "b-pw")),
        padding_scheme=b"stop=2\n0=30-30\n1=100-400",
        cert_file="/etc/sb/certs/c.pem", key_file="/abs/k.pem")


def test_singbox_client():
    assert read_client_config(json.dumps(SINGBOX_CLIENT), "/etc/sb") == ClientOptions(
        server=("203.0.113.5", 8443), password="pw", sni="cdn.example", insecure=True,
        alpn=("h2", "http/1.1"), name="my-node", listen=("127.0.0.1", 2080),
        idle_check=30.0, idle_timeout=90.0, min_idle=2)


def test_mihomo_server_keeps_passwords_as_written():
    """An unquoted 0123 would be the number 83 with YAML 1.1 rules, yes the boolean true;
    mihomo (Go, typed fields) keeps the text, and so do we."""
    assert read_server_config(MIHOMO_SERVER, "/etc/mihomo") == ServerOptions(
        listen=("0.0.0.0", 9443), users=(User("alice", "0123"), User("bob", "yes")),
        padding_scheme=b"stop=2\n0=30-30\n1=100-400",
        cert_file="/etc/mihomo/cert.pem", key_file="/etc/mihomo/key.pem")


def test_mihomo_client():
    assert read_client_config(MIHOMO_CLIENT, "/etc/mihomo") == ClientOptions(
        server=("hk.example", 443), password="0123", name="HK 01", sni="hk.example",
        insecure=False, pin=bytes.fromhex(PIN_HEX), alpn=("h2",), idle_check=30.0,
        idle_timeout=45.0, min_idle=1, disable_reuse=True, listen=("0.0.0.0", 7890))


@pytest.mark.parametrize("general,listen", [
    ("mixed-port: 7890\n", ("127.0.0.1", 7890)),  # allow-lan false: loopback only
    ("socks-port: 7891\nallow-lan: true\nbind-address: 192.0.2.1\n", ("192.0.2.1", 7891)),
    ("port: 7892\n", ("127.0.0.1", 7892)),
    ("", None),
])
def test_mihomo_local_port(general, listen):
    text = general + "proxies: [{type: anytls, name: a, server: h, port: 1, password: p}]\n"
    assert read_client_config(text, "/").listen == listen


def test_unsupported_fields_are_named():
    config = json.loads(json.dumps(SINGBOX_CLIENT))
    config["outbounds"][0]["tls"]["utls"] = {"enabled": True, "fingerprint": "chrome"}
    config["outbounds"][0]["detour"] = "other"
    config["outbounds"].append({"type": "anytls", "tag": "second", "server": "h", "server_port": 1,
                                "tls": {"enabled": True}})
    # the local inbound's users are --local-auth's (issue 18); sniffing is not ours
    config["inbounds"][0]["users"] = [{"username": "u", "password": "p"}]
    config["inbounds"][0]["sniff"] = True
    options = read_client_config(json.dumps(config), "/")
    assert options.unsupported == (
        "outbounds[0].detour", "outbounds[0].tls.utls",
        "1 more anytls outbound(s) (the first is used)", "inbounds[0].sniff")
    assert options.local_users == (("u", "p"),)
    text = MIHOMO_CLIENT.replace("    udp: true\n",
                                 "    udp: true\n    client-fingerprint: chrome\n")
    assert read_client_config(text, "/").unsupported == ("proxies[0].client-fingerprint",)


@pytest.mark.parametrize("text,error", [
    (json.dumps({"outbounds": [{"type": "anytls", "server": "h", "server_port": 1,
                                "tls": {"enabled": True, "reality": {"enabled": True}}}]}),
     "outbounds[0].tls.reality: REALITY is another security layer; anytls-ref speaks anytls "
     "over TLS only"),
    (json.dumps({"outbounds": [{"type": "anytls", "server": "h", "server_port": 1}]}),
     "outbounds[0].tls.enabled is not true: anytls runs inside TLS"),
    (json.dumps({"outbounds": [{"type": "anytls", "server": "h", "server_port": 1,
                                "idle_session_timeout": 30, "tls": {"enabled": True}}]}),
     "outbounds[0].idle_session_timeout: expected a duration such as \"30s\" or \"1m30s\", "
     "got 30"),
    (json.dumps({"outbounds": [{"type": "direct"}]}),
     "no outbound of type anytls in this sing-box config"),
    ("proxies: [{type: anytls, server: h, port: 1, shadow-tls-opts: {password: x}}]",
     "proxies[0].shadow-tls-opts asks for another security layer; anytls-ref speaks anytls "
     "over TLS only"),
    ("proxies: [{type: anytls, server: h, port: 99999}]",
     "proxies[0].port: port 99999 is not in 0..65535"),
    ("proxies: [{type: anytls, server: h, port: 1, fingerprint: chrome}]",
     "proxies[0].fingerprint 'chrome' is not a SHA-256 fingerprint (64 hex digits, colons "
     "allowed)"),
    ("dns: {enable: true}\n", "neither a sing-box config (inbounds, outbounds) nor a mihomo "
                              "config (listeners, proxies)"),
    ("proxies: [\n", "neither JSON nor YAML at line 2: expected the node content, but found "
                     "'<stream end>'"),
])
def test_config_errors_are_one_line(text, error):
    with pytest.raises(ConfigError) as err:
        read_client_config(text, "/")
    assert str(err.value) == error


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "client.json"
    path.write_text(json.dumps(SINGBOX_CLIENT))
    args = ["client", "-c", str(path)]
    config, listen = client_config(build_parser().parse_args(args))
    assert (config.server, config.password, config.sni, config.insecure, config.alpn,
            config.name, listen, config.params.min_idle_session) == (
        ("203.0.113.5", 8443), "pw", "cdn.example", True, ("h2", "http/1.1"), "my-node",
        ("127.0.0.1", 2080), 2)
    config, listen = client_config(build_parser().parse_args(
        args + ["-l", "127.0.0.1:3080", "-s", "anytls://link-pw@other.example:1443/?sni=x",
                "-m", "0", "-p", "flag-pw"]))
    assert (config.server, config.password, config.sni, listen,
            config.params.min_idle_session) == (("other.example", 1443), "flag-pw", "x",
                                                ("127.0.0.1", 3080), 0)


def test_server_flags_override_the_file(tmp_path):
    cert, key = write_self_signed(str(tmp_path))
    text = MIHOMO_SERVER.replace("./cert.pem", cert).replace("./key.pem", key)
    (tmp_path / "config.yaml").write_text(text)
    args = ["server", "-c", str(tmp_path / "config.yaml")]
    config = server_config(build_parser().parse_args(args))
    assert (config.listen, config.users, config.padding_scheme, config.cert_file) == (
        ("0.0.0.0", 9443), (User("alice", "0123"), User("bob", "yes")),
        b"stop=2\n0=30-30\n1=100-400", cert)
    config = server_config(build_parser().parse_args(
        args + ["-l", "127.0.0.1:0", "--user", "carol:c-pw"]))
    assert (config.listen, config.users) == (("127.0.0.1", 0), (User("carol", "c-pw"),))


def test_a_bad_padding_scheme_in_a_config_is_one_line(tmp_path, capsys):
    config = json.loads(json.dumps(SINGBOX_SERVER))
    config["inbounds"][0]["padding_scheme"] = ["stop=2", "0=x"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(config))
    assert main(["server", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"anytls-ref: error: config {path}: padding scheme: ")
    assert err.count("\n") == 1


def _run_until(argv: list[str], ready: str, timeout: float = 20.0) -> str:
    """Start ``python -m anytls_ref ARGV``, wait for ``ready`` in its output, stop it; the
    output."""
    proc = subprocess.Popen([sys.executable, "-m", "anytls_ref", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            lines.append(line)
            if ready in line or time.monotonic() > deadline:
                break
    finally:
        proc.terminate()
        lines.append(proc.communicate(timeout=20)[0])
    return "".join(lines)


def test_a_config_with_unsupported_fields_starts_with_one_warning(tmp_path):
    cert, key = write_self_signed(str(tmp_path))
    server_cfg = json.loads(json.dumps(SINGBOX_SERVER))
    inbound = server_cfg["inbounds"][0]
    inbound.update(listen_port=0, sniff=True, tcp_fast_open=True)
    inbound["tls"].update(certificate_path=cert, key_path=key, alpn=["h2"])
    (tmp_path / "s.json").write_text(json.dumps(server_cfg))
    out = _run_until(["server", "-c", str(tmp_path / "s.json")], "anytls server listening")
    assert "anytls server listening" in out
    warnings = [line for line in out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, out
    assert warnings[0].endswith(f"config {tmp_path / 's.json'}: not supported, ignored: "
                                "inbounds[0].sniff; inbounds[0].tcp_fast_open; "
                                "inbounds[0].tls.alpn")

    text = MIHOMO_CLIENT.replace("mixed-port: 7890\nallow-lan: true\n", "mixed-port: 0\n")
    text = text.replace("    udp: true\n", "    udp: true\n    client-fingerprint: chrome\n")
    (tmp_path / "c.yaml").write_text(text)
    out = _run_until(["client", "-c", str(tmp_path / "c.yaml"), "-l", "127.0.0.1:0"],
                     "proxy listening")
    assert "proxy listening" in out and "(node HK 01)" in out
    warnings = [line for line in out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, out
    assert warnings[0].endswith("not supported, ignored: proxies[0].client-fingerprint")
