"""The bad-input campaign (issue 18): one row per bad input, over every way into anytls-ref.

Ways in: command lines and the environment, config files (sing-box JSON, mihomo YAML),
padding scheme files, share links, certificates and keys, the client's local HTTP proxy and
SOCKS5 port (TCP and UDP), and the ``probe``, ``padding`` and ``link`` subcommands. Each row
asserts the exact outcome:

- a command line: exit code 2 and ONE line on stderr, ``anytls-ref: error: `` then the input
  and the problem (the text is the row's); nothing on stdout;
- the HTTP proxy: the status line and the reason in the body; SOCKS5: the exact reply bytes;
  either way the log line that says what was wrong;
- an input that is odd but usable: what it reads as, and the warning logged, if any.

And for every row: no ``Traceback`` on stderr or in the log, no thread left running (the
conftest check), no file descriptor left open (``no_fd_left``); rows run as subprocesses end
with their process. spec_notes/reliability.md's "bad input" table summarises the rows.

Unreadable files: the tests run as root, which reads a ``chmod 000`` file all the same, so
those rows run the command in a child process without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (``prctl(PR_CAPBSET_DROP)`` before exec), where ``chmod 000`` means what it
means for everybody else.
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import errno
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from anytls_ref import __version__
from anytls_ref.__main__ import build_parser, main
from anytls_ref.cli.inputs import MAX_INPUT_FILE
from anytls_ref.cli.options import server_config
from anytls_ref.cli.service import log_level
from anytls_ref.config.files import read_client_config, read_server_config
from anytls_ref.net import inbound as inbound_module
from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import LocalAuth, ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.tls import write_self_signed
from anytls_ref.padding import parse_scheme
from anytls_ref.probe.scripting import eventually
from anytls_ref.probe.targets import refused_port
from interop.targets import HTTPTarget, UdpEcho

PASSWORD = "bad input"
ERROR = "anytls-ref: error: "


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("ANYTLS_PASSWORD", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def no_fd_left():
    """Every row closes what it opened (sockets, files): the process's descriptors after the
    row are those before it (given a moment for threads that are ending)."""
    before = open_fds()
    yield
    deadline = time.monotonic() + 3.0
    while (left := open_fds() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in left
                      if os.path.exists(f"/proc/self/fd/{fd}")}


# ---- the files the rows name ----------------------------------------------------------------


def certificate(*, days: tuple[int, int] = (-1, 365), key=None) -> tuple[bytes, bytes]:
    """A self-signed certificate valid from ``days[0]`` to ``days[1]`` days from now."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days[0]))
            .not_valid_after(now + datetime.timedelta(days=days[1]))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


SINGBOX_SERVER = {"inbounds": [{"type": "anytls", "listen_port": 0,
                                "users": [{"name": "a", "password": "p"}],
                                "tls": {"enabled": True}}]}
MIHOMO_SERVER = "listeners:\n  - type: anytls\n    port: 0\n    users:\n      a: p\n"


def singbox_server(**changes) -> str:
    config = json.loads(json.dumps(SINGBOX_SERVER))
    config["inbounds"][0].update(changes)
    return json.dumps(config)


#: name → content of every file a row names as {name}
FILES: dict[str, bytes | str] = {
    "garbage": "not a certificate\n",
    "empty": b"",
    "binary": b"\xff\xfe\x00binary",
    "huge": b"a" * (MAX_INPUT_FILE + 1),
    # config files
    "trunc_json": '{"inbounds": [',
    "wrongtype_inbounds": '{"inbounds": "x"}',
    "wrongtype_users": singbox_server(users="x"),
    "wrongtype_password": singbox_server(users=[{"name": "a", "password": True}]),
    "missing_password": singbox_server(users=[{"name": "a"}]),
    "wrongtype_port": singbox_server(listen_port="abc"),
    "tls_off": singbox_server(tls={"enabled": False}),
    "bad_scheme_json": singbox_server(padding_scheme=["stop=2", "0=x"]),
    "missing_cert_json": singbox_server(tls={"enabled": True, "certificate_path": "nope.pem",
                                             "key_path": "nope.key"}),
    "list_yaml": "- a\n- b\n",
    "bad_yaml": "listeners: [\n",
    "tab_yaml": "listeners:\n\t- type: anytls\n",
    "alias_yaml": "a: &x [*x]\n",
    "no_family": "dns: {enable: true}\n",
    "users_list_yaml": MIHOMO_SERVER.replace("    users:\n      a: p\n", "    users: [a, p]\n"),
    "port_yaml": MIHOMO_SERVER.replace("port: 0", "port: 99999"),
    "no_listener_yaml": "listeners:\n  - type: socks\n    port: 1\n",
    "proxy_no_port": "proxies:\n  - {type: anytls, server: h, password: p}\n",
    "bad_authentication": ("mixed-port: 0\nauthentication: [nocolon]\n"
                           "proxies:\n  - {type: anytls, server: h, port: 1, password: p}\n"),
    "ca_dir_json": json.dumps({"outbounds": [{
        "type": "anytls", "server": "h", "server_port": 1, "password": "p",
        "tls": {"enabled": True, "certificate_path": "dir"}}]}),
    # padding schemes
    "scheme_stop_x": "stop=x\n",
    "scheme_long_line": "a" * 500 + "\n",
    "scheme_bad_entry": "stop=2\n0=x\n",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files and ports rows name, made once: {name: path (or port)}."""
    tmp = tmp_path_factory.mktemp("bad-input")
    paths: dict[str, str] = {"tmp": str(tmp)}
    for name, content in FILES.items():
        path = tmp / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        paths[name] = str(path)
    paths["cert"], paths["key"] = write_self_signed(str(tmp))
    for name, days in (("expired", (-30, -1)), ("future", (30, 365))):
        cert_pem, key_pem = certificate(days=days)
        (tmp / f"{name}_cert.pem").write_bytes(cert_pem)
        (tmp / f"{name}_key.pem").write_bytes(key_pem)
        paths[f"{name}_cert"], paths[f"{name}_key"] = (str(tmp / f"{name}_cert.pem"),
                                                       str(tmp / f"{name}_key.pem"))
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp / "other_key.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp / "encrypted_key.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    paths["other_key"] = str(tmp / "other_key.pem")
    paths["encrypted_key"] = str(tmp / "encrypted_key.pem")
    (tmp / "dir").mkdir()
    paths["dir"] = str(tmp / "dir")
    os.symlink("loop", tmp / "loop")
    paths["loop"] = str(tmp / "loop")
    paths["missing"] = str(tmp / "missing")
    for name in ("cert", "key"):  # unreadable to anyone without CAP_DAC_OVERRIDE
        locked = tmp / f"locked_{name}.pem"
        locked.write_bytes((tmp / f"{name}.pem").read_bytes())
        locked.chmod(0)
        paths[f"locked_{name}"] = str(locked)
    paths["refused"] = refused_port()
    paths["version"] = __version__
    return paths


@pytest.fixture(scope="module")
def busy_port():
    """A port something already listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def formatted(text: str, files: dict) -> str:
    return text.format(**files)


# ---- command lines: exit code 2, one line naming the input and the problem --------------------

def row(case: str, argv: str | list[str], error: str, **env: str):
    return pytest.param(argv.split() if isinstance(argv, str) else argv, error, env, id=case)


SERVER = "server -p pw -l 127.0.0.1:0"
CLIENT = "client -s 127.0.0.1:1 -p pw -l 127.0.0.1:0"
LOG_LEVEL_CHOICES = "(choose from 'debug', 'info', 'warning', 'error')"
LINK_FORM = "the form is anytls://PASSWORD@HOST:PORT/?sni=NAME (PORT defaults to 443)"
NOT_PEM = "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)"
SECONDS = "is not a number of seconds (0 or more)"

CLI_ROWS = [
    # -- the environment and where flags go
    row("LOG_LEVEL=trace", SERVER, "LOG_LEVEL='trace' is not a log level: debug, info, "
                                   "warning, error", LOG_LEVEL="trace"),
    row("LOG_LEVEL=verbose client", CLIENT, "LOG_LEVEL='verbose' is not a log level: debug, "
                                            "info, warning, error", LOG_LEVEL="verbose"),
    row("--log-level trace before", "--log-level trace " + SERVER,
        f"argument --log-level: invalid choice: 'trace' {LOG_LEVEL_CHOICES}"),
    row("--log-level loud after", SERVER + " --log-level loud",
        f"argument --log-level: invalid choice: 'loud' {LOG_LEVEL_CHOICES}"),
    row("--log-level without a value", "server --log-level",
        "argument --log-level: expected one argument"),
    row("-p before the subcommand", "-p pw server", "-p is a flag of server, client and link: "
                                                    "give it after the subcommand (anytls-ref "
                                                    "server -p ...)"),
    row("--grace before the subcommand", "--grace 5 server -p pw",
        "--grace is a flag of server and client: give it after the subcommand (anytls-ref "
        "server --grace ...)"),
    row("no subcommand", [], "the following arguments are required: command"),
    row("unknown subcommand", "launch", "argument command: invalid choice: 'launch' (choose "
                                       "from 'server', 'client', 'link', 'demo', 'padding', "
                                       "'probe')"),
    row("-p at the end", "server -p", "argument -p/--password: expected one argument"),
    row("-l at the end", "server -p pw -l", "argument -l/--listen: expected one argument"),
    row("a stray word", SERVER + " extra", "unrecognized arguments: extra"),
    row("--pass", "server --pass pw", "unrecognized arguments: --pass pw"),
    # -- anytls-go's spellings, mistyped
    row("-paddingscheme=", "server -paddingscheme=x -p pw",
        "unknown flag -paddingscheme (did you mean -padding-scheme?)"),
    row("-pSECRET", "server -pSECRET", "unknown flag -p… (write -p VALUE or -p=VALUE; a value "
                                       "glued to a flag is not accepted)"),
    row("-snix", CLIENT + " -snix", "unknown flag -snix (did you mean -sni?)"),
    row("-dr=maybe", CLIENT + " -dr=maybe", "argument -dr: 'maybe' is not true or false"),
    # -- bad values
    row("listen port 99999", "server -p pw -l 127.0.0.1:99999",
        "listen address '127.0.0.1:99999' is not HOST:PORT"),
    row("listen without a port", "server -p pw -l localhost",
        "listen address 'localhost' is not HOST:PORT"),
    row("listen address taken", "server -p pw -l 127.0.0.1:{busy}",
        "cannot listen on 127.0.0.1:{busy}: Address already in use"),
    row("listen address not ours", "server -p pw -l 192.0.2.1:0",
        "cannot listen on 192.0.2.1:0: Cannot assign requested address"),
    row("fallback without a port", SERVER + " --fallback nowhere",
        "fallback address 'nowhere' is not HOST:PORT"),
    row("--min-version 0", SERVER + " --min-version 0",
        "--min-version 0: this server speaks protocol versions 1 to 3"),
    row("--min-version 9", SERVER + " --min-version 9",
        "--min-version 9: this server speaks protocol versions 1 to 3"),
    row("--grace -1", SERVER + " --grace -1", f"argument --grace: '-1' {SECONDS}"),
    row("--grace nan", SERVER + " --grace nan", f"argument --grace: 'nan' {SECONDS}"),
    row("--max-connections 0", SERVER + " --max-connections 0",
        "argument --max-connections: must be 1 or more"),
    row("--max-connections lots", CLIENT + " --max-connections lots",
        "argument --max-connections: 'lots' is not a whole number"),
    row("--idle-timeout inf", CLIENT + " --idle-timeout inf",
        f"argument --idle-timeout: 'inf' {SECONDS}"),
    row("--heartbeat 0", CLIENT + " --heartbeat 0",
        "--heartbeat must be a positive number of seconds"),
    row("-m -1", CLIENT + " -m -1", "min idle sessions must be 0 or more"),
    row("--local-auth without a colon", CLIENT + " --local-auth alice",
        "--local-auth: expected USER:PASS (a name, a colon, then the password)"),
    row("--local-auth without a name", CLIENT + " --local-auth :pw",
        "--local-auth: the username must be 1 to 255 bytes (RFC 1929)"),
    row("--local-auth without a password", CLIENT + " --local-auth alice:",
        "--local-auth: the password must be 1 to 255 bytes (RFC 1929)"),
    row("--local-auth password of 256 bytes", CLIENT.split() + ["--local-auth", "a:" + "p" * 256],
        "--local-auth: the password must be 1 to 255 bytes (RFC 1929)"),
    row("client without a server", "client -p pw",
        "the server is needed: -s/--server HOST:PORT or an anytls:// link, or -c FILE"),
    # -- passwords
    row("empty -p", ["server", "-p", ""], "-p: an empty password is refused"),
    row("password file a directory", "server --password-file {dir}",
        "password file {dir}: Is a directory"),
    row("password file huge", "server --password-file {huge}",
        "password file {huge}: larger than 1 MiB; is it the right file?"),
    row("password file not UTF-8", "server --password-file {binary}",
        "password file {binary}: not UTF-8 text"),
    row("ANYTLS_PASSWORD empty", "server", "a password is needed: -p/--password PASSWORD, "
                                           "--password-file FILE, --user NAME:PASSWORD, -c FILE "
                                           "or ANYTLS_PASSWORD", ANYTLS_PASSWORD=""),
    # -- share links
    row("link port 99999", "client -s anytls://pw@h:99999",
        f"link 'anytls://PASSWORD@h:99999': the port is not a number in 0..65535; {LINK_FORM}"),
    row("link IPv6 unbalanced", "client -s anytls://pw@[::1:443",
        f"link 'anytls://PASSWORD@[::1:443': the host is not a valid [IPv6] literal; "
        f"{LINK_FORM}"),
    row("link http://", "client -s http://pw@h:1",
        "link 'http://PASSWORD@h:1' is not anytls://PASSWORD@HOST:PORT/?sni=NAME (PORT "
        "defaults to 443)"),
    row("link without a password", "client -s anytls://h:1",
        "a password is needed: -p PASSWORD, --password-file FILE, anytls://PASSWORD@HOST:PORT, "
        "-c FILE or ANYTLS_PASSWORD"),
    row("link insecure=maybe", "client -s anytls://pw@h:1/?insecure=maybe",
        "link 'anytls://PASSWORD@h:1/?insecure=maybe': insecure=maybe is not 1, 0, true or "
        "false"),
    row("link hpkp=zz", "client -s anytls://pw@h:1/?hpkp=zz",
        "link 'anytls://PASSWORD@h:1/?hpkp=zz': hpkp 'zz' is not a SHA-256 fingerprint (64 hex "
        "digits, colons allowed)"),
    row("--pin abcd", CLIENT + " --pin abcd",
        "--pin 'abcd' is not a SHA-256 fingerprint (64 hex digits, colons allowed)"),
    # -- certificates and keys
    row("cert missing", SERVER + " --cert {missing} --key {key}",
        "certificate {missing}: no such file"),
    row("cert a directory", SERVER + " --cert {dir} --key {key}",
        "certificate {dir}: Is a directory"),
    row("cert a symlink loop", SERVER + " --cert {loop} --key {key}",
        "certificate {loop}: Too many levels of symbolic links"),
    row("cert garbage", SERVER + " --cert {garbage} --key {key}",
        f"certificate {{garbage}}: {NOT_PEM}"),
    row("cert empty", SERVER + " --cert {empty} --key {key}", f"certificate {{empty}}: {NOT_PEM}"),
    row("cert huge", SERVER + " --cert {huge} --key {key}",
        "certificate {huge}: larger than 1 MiB; is it the right file?"),
    row("cert and key swapped", SERVER + " --cert {key} --key {cert}",
        "certificate {key}: holds a private key, not a certificate (--cert and --key "
        "swapped?)"),
    row("key a certificate", SERVER + " --cert {cert} --key {cert}",
        "key {cert}: holds a certificate, not a private key (--cert and --key swapped?)"),
    row("key garbage", SERVER + " --cert {cert} --key {garbage}",
        "key {garbage}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)"),
    row("key of another certificate", SERVER + " --cert {cert} --key {other_key}",
        "key {other_key} is not the key of certificate {cert} (their public keys differ)"),
    row("key encrypted", SERVER + " --cert {cert} --key {encrypted_key}",
        "key {encrypted_key}: encrypted with a passphrase; give it decrypted (openssl pkey -in "
        "KEY -out PLAIN.pem)"),
    row("cert without key", SERVER + " --cert {cert}", "--cert and --key go together"),
    row("key without cert", SERVER + " --key {key}", "--cert and --key go together"),
    row("CA missing", CLIENT + " --ca {missing}", "CA file {missing}: no such file"),
    row("CA a directory", CLIENT + " --ca {dir}", "CA file {dir}: Is a directory"),
    row("CA garbage", CLIENT + " --ca {garbage}", f"CA file {{garbage}}: {NOT_PEM}"),
    row("CA a private key", CLIENT + " --ca {key}",
        "CA file {key}: holds a private key, not a certificate"),
    # -- config files
    row("config missing", "server -c {missing}", "config {missing}: No such file or directory"),
    row("config a directory", "server -c {dir}", "config {dir}: Is a directory"),
    row("config empty", "server -c {empty}", "config {empty}: expected a sing-box JSON or "
                                             "mihomo YAML config (a mapping at the top)"),
    row("config huge", "server -c {huge}", "config {huge}: larger than 1 MiB; is it the right "
                                           "file?"),
    row("config not UTF-8", "server -c {binary}", "config {binary}: not UTF-8 text"),
    row("JSON truncated", "server -c {trunc_json}",
        "config {trunc_json}: not valid JSON at line 1 column 15: Expecting value"),
    row("YAML a list", "server -c {list_yaml}", "config {list_yaml}: expected a sing-box JSON "
                                                "or mihomo YAML config (a mapping at the top)"),
    row("YAML unclosed", "server -c {bad_yaml}", "config {bad_yaml}: neither JSON nor YAML at "
                                                 "line 2: expected the node content, but found "
                                                 "'<stream end>'"),
    row("YAML with a tab", "server -c {tab_yaml}", "config {tab_yaml}: neither JSON nor YAML at "
                                                   "line 2: found character '\\t' that cannot "
                                                   "start any token"),
    row("YAML recursive alias", "server -c {alias_yaml}",
        "config {alias_yaml}: neither JSON nor YAML at line 1: found unconstructable recursive "
        "node"),
    row("config of neither family", "server -c {no_family}",
        "config {no_family}: neither a sing-box config (inbounds, outbounds) nor a mihomo "
        "config (listeners, proxies)"),
    row("inbounds a string", "server -c {wrongtype_inbounds}",
        "config {wrongtype_inbounds}: inbounds: expected a list"),
    row("users a string", "server -c {wrongtype_users}",
        "config {wrongtype_users}: inbounds[0].users: expected a list"),
    row("password a boolean", "server -c {wrongtype_password}",
        "config {wrongtype_password}: inbounds[0].users[0].password: expected a string, got "
        "bool"),
    row("password missing", "server -c {missing_password}",
        "config {missing_password}: inbounds[0].users[0].password is missing or empty"),
    row("listen_port a word", "server -c {wrongtype_port}",
        "config {wrongtype_port}: inbounds[0].listen_port: expected a whole number, got 'abc'"),
    row("tls off", "server -c {tls_off}",
        "config {tls_off}: inbounds[0].tls.enabled is not true: anytls runs inside TLS"),
    row("config padding scheme bad", "server -c {bad_scheme_json}",
        "config {bad_scheme_json}: padding scheme: line 2: entry 'x' skipped: not a range a-b of "
        "whole numbers"),
    row("config certificate missing", "server -c {missing_cert_json}",
        "certificate {tmp}/nope.pem: no such file"),
    row("mihomo users a list", "server -c {users_list_yaml}",
        "config {users_list_yaml}: listeners[0].users: expected a map of name to password"),
    row("mihomo port 99999", "server -c {port_yaml}",
        "config {port_yaml}: listeners[0].port: port 99999 is not in 0..65535"),
    row("mihomo no anytls listener", "server -c {no_listener_yaml}",
        "config {no_listener_yaml}: no anytls entry in the listeners of this mihomo config"),
    row("mihomo proxy without a port", "client -c {proxy_no_port}",
        "config {proxy_no_port}: proxies[0]: server and port are needed"),
    row("mihomo authentication without a colon", "client -c {bad_authentication}",
        "config {bad_authentication}: top level.authentication[0]: expected USER:PASS (a name, "
        "a colon, then the password)"),
    row("sing-box CA a directory", "client -c {ca_dir_json}", "CA file {tmp}/dir: Is a "
                                                              "directory"),
    # -- padding scheme files
    row("scheme missing", "padding --scheme {missing}",
        "padding scheme {missing}: No such file or directory"),
    row("scheme a directory", "padding --scheme {dir}", "padding scheme {dir}: Is a directory"),
    row("scheme empty", "padding --scheme {empty}",
        "padding scheme {empty}: the scheme has no stop=N line"),
    row("scheme not UTF-8", "padding --scheme {binary}",
        "padding scheme {binary}: line 1: not valid UTF-8"),
    row("scheme stop=x", "padding --scheme {scheme_stop_x}",
        "padding scheme {scheme_stop_x}: line 1: stop='x' is not a whole number"),
    row("scheme a 500-byte line", "padding --scheme {scheme_long_line}",
        "padding scheme {scheme_long_line}: line 1: '" + "a" * 60 + "…' is not key=value"),
    row("scheme huge", "padding --scheme {huge}",
        "padding scheme {huge}: larger than 1 MiB; is it the right file?"),
    row("server scheme bad entry", SERVER + " --padding-scheme {scheme_bad_entry}",
        "padding scheme {scheme_bad_entry}: line 2: entry 'x' skipped: not a range a-b of "
        "whole numbers"),
    # -- padding, probe, link invocations
    row("padding --simulate -1", "padding --simulate -1", "--simulate takes 0..16777216 bytes"),
    row("padding --samples -1", "padding --samples -1", "--samples must be 0 or more"),
    row("padding --seed x", "padding --seed x", "argument --seed: invalid int value: 'x'"),
    row("padding --scheme and --default", "padding --scheme {cert} --default",
        "argument --default: not allowed with argument --scheme"),
    row("probe server without a port", "probe server nowhere -p x",
        "server address 'nowhere' is not HOST:PORT"),
    row("probe server without -p", "probe server 127.0.0.1:1",
        "the following arguments are required: -p/--password"),
    row("probe server --target-host a name", "probe server 127.0.0.1:1 -p x --target-host h",
        "argument --target-host: 'h' is not an IP address"),
    row("probe client port 99999", "probe client -l 127.0.0.1:99999",
        "listen address '127.0.0.1:99999' is not HOST:PORT"),
    row("probe client --wait nan", "probe client -l 127.0.0.1:0 --wait nan",
        f"argument --wait: 'nan' {SECONDS}"),
    row("link without a port", "link h -p x", "server address 'h' is not HOST:PORT"),
    row("link without a password", "link 127.0.0.1:1", "a password is needed: -p PASSWORD, "
                                                       "--password-file FILE or ANYTLS_PASSWORD"),
    row("link --connect without a port", "link 127.0.0.1:1 -p x --connect bad",
        "--connect address 'bad' is not HOST:PORT"),
    row("link to a closed port", "link 127.0.0.1:{refused} -p x",
        "server unreachable: nothing listens on 127.0.0.1:{refused} (connection refused): is "
        "the server running, and the port right?"),
]


@pytest.mark.parametrize("argv, error, env", CLI_ROWS)
def test_a_bad_command_line_is_one_line_naming_the_input(argv, error, env, files, busy_port,
                                                         monkeypatch, capsys, caplog):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    values = {**files, "busy": busy_port}
    assert main([word.format(**values) for word in argv]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{ERROR}{error.format(**values)}\n")
    assert "Traceback" not in caplog.text


# ---- command lines that need a peer: a server that refuses the password, a plain web server ---


def test_probe_server_with_a_wrong_password_is_one_line(files, capsys, caplog):
    with Server(ServerConfig(("127.0.0.1", 0), PASSWORD)) as server:
        address = "127.0.0.1:%d" % server.address[1]
        assert main(["probe", "server", address, "-p", "wrong", "--insecure"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{ERROR}authentication failed: {address} closed the connection "
                              "right after the password: wrong -p? (no check can pass without "
                              "the password)\n")
    assert "Traceback" not in caplog.text


def test_link_to_a_plain_web_server_asks_if_it_is_anytls(capsys, caplog):
    web = HTTPTarget()
    try:
        address = "127.0.0.1:%d" % web.address[1]
        assert main(["link", address, "-p", "x"]) == 2
    finally:
        web.close()
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{ERROR}{address} answered, but not with TLS: is this an anytls "
                              "server? it answered plain TCP/HTTP (check the address and port)\n")
    assert "Traceback" not in caplog.text


# ---- inputs that look odd but are fine: what they read as, and the warning if any -------------


def test_an_expired_or_future_certificate_starts_with_a_warning(files, caplog):
    caplog.set_level(logging.WARNING)
    for name, words in (("expired", "expired on"), ("future", "is valid only from")):
        cert, key = files[f"{name}_cert"], files[f"{name}_key"]
        config = server_config(build_parser().parse_args(
            ["server", "-p", "pw", "--cert", cert, "--key", key]))
        assert (config.cert_file, config.key_file) == (cert, key)
        assert f"certificate {cert} {words}" in caplog.text
    assert caplog.text.count("WARNING") == 2 and "a --pin still matches" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("case", ["CRLF", "UTF-8 BOM", "BOM and CRLF"])
def test_a_windows_saved_config_reads_as_the_same_config(case, tmp_path):
    text = {"CRLF": MIHOMO_SERVER.replace("\n", "\r\n"), "UTF-8 BOM": "\ufeff" + MIHOMO_SERVER,
            "BOM and CRLF": "\ufeff" + MIHOMO_SERVER.replace("\n", "\r\n")}[case]
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode())
    config = server_config(build_parser().parse_args(["server", "-c", str(path)]))
    assert (config.listen, [u.name for u in config.users]) == (("0.0.0.0", 0), ["a"])
    assert read_server_config(MIHOMO_SERVER, "/").users == config.users


@pytest.mark.parametrize("case", ["CRLF", "UTF-8 BOM"])
def test_a_windows_saved_padding_scheme_is_the_same_scheme(case, tmp_path):
    scheme = b"stop=3\n0=30-30\n1=100-400\n2=400-500,c,500-1000\n"
    raw = scheme.replace(b"\n", b"\r\n") if case == "CRLF" else b"\xef\xbb\xbf" + scheme
    path = tmp_path / "scheme.txt"
    path.write_bytes(raw)
    config = server_config(build_parser().parse_args(
        ["server", "-p", "pw", "--padding-scheme", str(path)]))
    # the scheme clients receive (and whose md5 they compare) is the LF one
    assert config.padding_scheme == scheme
    assert parse_scheme(config.padding_scheme).md5 == parse_scheme(scheme).md5


def test_a_password_file_saved_on_windows_has_no_carriage_return(tmp_path):
    path = tmp_path / "pw"
    path.write_bytes(b"secret\r\n")
    config = server_config(build_parser().parse_args(["server", "--password-file", str(path)]))
    assert [u.password for u in config.users] == ["secret"]


@pytest.mark.parametrize("argv", [["--log-level", "DEBUG", "server"],
                                  ["server", "--log-level", "debug"],
                                  ["server", "--log-level", "Debug"]])
def test_log_level_is_taken_before_or_after_the_subcommand_in_any_case(argv):
    assert log_level(build_parser().parse_args([*argv, "-p", "pw"])) == "debug"


def test_the_config_file_names_the_local_users(files):
    text = ("mixed-port: 0\nauthentication: [\"alice:s3:cret\", \"bob:pw\"]\n"
            "proxies:\n  - {type: anytls, server: h, port: 1, password: p}\n")
    assert read_client_config(text, "/").local_users == (("alice", "s3:cret"), ("bob", "pw"))


@pytest.mark.parametrize("subcommand", ["server", "client", "link", "demo", "padding",
                                        ["probe", "server"], ["probe", "client"]])
def test_version_works_on_every_subcommand(subcommand, capsys):
    words = subcommand if isinstance(subcommand, list) else [subcommand]
    with pytest.raises(SystemExit) as exited:
        main([*words, "--version"])
    assert exited.value.code == 0
    assert capsys.readouterr() == (f"anytls-ref {__version__}\n", "")


# ---- the local HTTP proxy port ----------------------------------------------------------------


@pytest.fixture
def local_port(request):
    """Start a server, a client and its local SOCKS5/HTTP port; returns a factory taking the
    port's LocalAuth; all closed at the end."""
    owned: list = []

    def start(auth: LocalAuth | None = None) -> ProxyInbound:
        server = Server(ServerConfig(("127.0.0.1", 0), PASSWORD))
        server.start()
        owned.append(server)
        proxy = ProxyInbound(("127.0.0.1", 0), Client(ClientConfig(
            server.address, PASSWORD, insecure=True)), auth=auth)
        proxy.start()
        owned.append(proxy)
        return proxy

    yield start
    for thing in reversed(owned):
        thing.close()


def exchange(port: int, sent: bytes, *, pause: float = 0.0, eof: bool = False,
             timeout: float = 10.0) -> bytes:
    """Send ``sent`` (then wait ``pause`` seconds with the connection open; with ``eof``, end
    the sending side: the application stopped there), and read what comes back until the port
    closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(sent)
        time.sleep(pause)
        if eof:
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def basic(user: str, password: str) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Proxy-Authorization: Basic {token}\r\n".encode()


def http_row(case: str, sent: bytes, status: str, reason: str, log: str, **options):
    return pytest.param(sent, status, reason, log, options, id=case)


HTTP_ROWS = [
    http_row("port 99999", b"GET http://h:99999/ HTTP/1.1\r\n\r\n", "400 Bad Request",
             "bad URI 'http://h:99999/'", "HTTP 400"),
    http_row("IPv6 unbalanced", b"GET http://[::1/ HTTP/1.1\r\n\r\n", "400 Bad Request",
             "bad URI 'http://[::1/'", "HTTP 400"),
    http_row("IPv6 not hex", b"CONNECT [::zz]:443 HTTP/1.1\r\n\r\n", "400 Bad Request",
             "bad IPv6 address in CONNECT target '[::zz]:443'", "HTTP 400"),
    http_row("missing Host (origin form)", b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request",
             "not a proxy request: GET / (only http:// URIs and CONNECT are proxied)",
             "HTTP 400"),
    http_row("Host but origin form", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
             "400 Bad Request", "not a proxy request", "HTTP 400"),
    http_row("CONNECT without a port", b"CONNECT example.com HTTP/1.1\r\n\r\n",
             "400 Bad Request", "CONNECT target 'example.com' is not HOST:PORT", "HTTP 400"),
    http_row("not HTTP but letters", b"HELO example.com\r\n\r\n", "400 Bad Request",
             "bad HTTP request line b'HELO example.com'", "HTTP 400"),
    http_row("header without a colon", b"GET http://h/ HTTP/1.1\r\nno colon\r\n\r\n",
             "400 Bad Request", "bad header line b'no colon'", "HTTP 400"),
    http_row("request line of 9000 bytes", b"GET http://h/" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
             "414 URI Too Long", "request line longer than 8192 bytes", "HTTP 414"),
    http_row("head of 80 KiB", b"GET http://h/ HTTP/1.1\r\n" + b"X-A: b\r\n" * 10000,
             "431 Request Header Fields Too Large", "request head longer than 65536 bytes",
             "HTTP 431"),
    http_row("slow sender", b"GET http://h/ HTTP/1.1\r\n", "408 Request Timeout",
             "request head not complete in time", "HTTP 408", pause=1.0),
    http_row("refused target", b"GET http://127.0.0.1:{refused}/ HTTP/1.1\r\n\r\n",
             "502 Bad Gateway", "dial 127.0.0.1:{refused}: Connection refused",
             "the anytls server could not reach the target: dial 127.0.0.1:{refused}: "
             "Connection refused"),
    http_row("unknown method, refused target", b"BREW http://127.0.0.1:{refused}/ HTTP/1.1\r\n\r\n",
             "502 Bad Gateway", "Connection refused", "could not reach the target"),
    http_row("no credentials", b"GET http://127.0.0.1:{refused}/ HTTP/1.1\r\n\r\n",
             "407 Proxy Authentication Required", "proxy authentication required",
             "HTTP proxy request without the right credentials (407)", auth=True),
    http_row("Basic not base64", b"GET http://h/ HTTP/1.1\r\nProxy-Authorization: Basic !!\r\n\r\n",
             "407 Proxy Authentication Required", "proxy authentication required",
             "without the right credentials (407)", auth=True),
    http_row("wrong password", b"GET http://h/ HTTP/1.1\r\n" + basic("alice", "nope") + b"\r\n",
             "407 Proxy Authentication Required", "proxy authentication required",
             "without the right credentials (407)", auth=True),
]


@pytest.mark.parametrize("sent, status, reason, logged, options", HTTP_ROWS)
def test_a_bad_http_proxy_request_gets_the_status_that_says_why(sent, status, reason, logged,
                                                                options, local_port, files,
                                                                monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(inbound_module, "HANDSHAKE_TIMEOUT", 0.5)
    port = local_port(LocalAuth("alice", "s3cret") if options.get("auth") else None).address[1]
    values = {"refused": files["refused"]}
    answer = exchange(port, sent.replace(b"{refused}", str(files["refused"]).encode()),
                      pause=options.get("pause", 0.0))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == f"HTTP/1.1 {status}".encode()
    assert reason.format(**values) in body.decode()
    eventually(lambda: logged.format(**values) in caplog.text, 5.0, "the log line")
    assert "Traceback" not in caplog.text and "ERROR" not in caplog.text


def test_a_session_whose_stream_is_still_being_opened_is_not_closed_as_unused():
    """Found by the "refused target" rows under load: the server refused the target and ended
    the stream while the client was still writing the request's first bytes; the client took
    the session, with no stream left, for an unused one and shut it, so the application got
    "write failed: EOF occurred in violation of protocol" instead of the refusal."""

    class Opening:  # a session as stream_done sees it: no stream left, one being opened
        def __init__(self) -> None:
            self.closed, self.streams, self.opening, self.shut = threading.Event(), {}, 1, None

        busy = property(lambda self: self.opening > 0)

        def shutdown(self, reason: str) -> None:
            self.shut = reason

    with Client(ClientConfig(("127.0.0.1", 1), PASSWORD, disable_reuse=True)) as client:
        session = Opening()
        client.stream_done(session)
        assert session.shut is None
        session.opening = 0  # the opening is over; its stream's close comes back here
        client.stream_done(session)
        assert session.shut == "not reused"


def raw_row(case: str, sent: bytes, answer: bytes, logged: str, **options):
    return pytest.param(sent, answer, logged, options, id=case)


GREETING = b"\x05\x01\x00"
ACCEPTED = b"\x05\x00"
CONNECT_V4 = b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"


def socks_reply(code: int) -> bytes:
    return bytes((5, code, 0, 1, 0, 0, 0, 0, 0, 0))


NOT_SOCKS_NOR_HTTP = "is neither SOCKS5 nor HTTP; closing"

RAW_ROWS = [
    # -- bytes that are neither SOCKS5 nor HTTP
    raw_row("TLS ClientHello", b"\x16\x03\x01\x00\x05hello", b"",
            f"first byte 0x16 {NOT_SOCKS_NOR_HTTP}"),
    raw_row("SOCKS4", b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"",
            f"first byte 0x04 {NOT_SOCKS_NOR_HTTP}"),
    raw_row("blank lines", b"\r\n\r\n", b"", f"first byte 0x0d {NOT_SOCKS_NOR_HTTP}"),
    raw_row("HTTP head cut short", b"GET http://h/ HTTP/1.1\r\nHost", b"",
            "connection closed inside the HTTP request head", eof=True),
    # -- SOCKS5
    raw_row("request version 4", GREETING + b"\x04" + CONNECT_V4[1:], ACCEPTED,
            "SOCKS request version 4"),
    raw_row("command BIND", GREETING + b"\x05\x02" + CONNECT_V4[2:],
            ACCEPTED + socks_reply(7), "SOCKS5 command 2 not supported"),
    raw_row("command 9", GREETING + b"\x05\x09" + CONNECT_V4[2:], ACCEPTED + socks_reply(7),
            "SOCKS5 command 9 not supported"),
    raw_row("address type 5", GREETING + b"\x05\x01\x00\x05\x00\x50", ACCEPTED + socks_reply(8),
            "SOCKS5 address type 5 not supported"),
    raw_row("only username/password offered", b"\x05\x01\x02", b"\x05\xff",
            "SOCKS5 client offers no 'no authentication' method"),
    raw_row("no methods at all", b"\x05\x00", b"\x05\xff",
            "SOCKS5 client offers no 'no authentication' method"),
    raw_row("greeting cut short", b"\x05", b"",
            "connection closed after 1 of 2 bytes of the handshake", eof=True),
    raw_row("methods cut short", b"\x05\x03\x00", b"",
            "connection closed after 1 of 3 bytes of the handshake", eof=True),
    raw_row("domain cut short", GREETING + b"\x05\x01\x00\x03\x0aabc", ACCEPTED,
            "connection closed after 3 of 10 bytes of the handshake", eof=True),
    raw_row("port cut short", GREETING + CONNECT_V4[:-1], ACCEPTED,
            "connection closed after 1 of 2 bytes of the handshake", eof=True),
    raw_row("empty domain name", GREETING + b"\x05\x01\x00\x03\x00\x00\x50",
            ACCEPTED + socks_reply(4), "SOCKS5 target with an empty domain name"),
    raw_row("slow sender", b"\x05\x01", b"", "timed out", pause=1.0),
    # -- SOCKS5 with --local-auth (RFC 1929)
    raw_row("login version 5", b"\x05\x01\x02" + b"\x05\x05alice\x06s3cret", b"\x05\x02\x01\x01",
            "SOCKS5 username/password rejected", auth=True),
    raw_row("wrong password", b"\x05\x01\x02" + b"\x01\x05alice\x04nope", b"\x05\x02\x01\x01",
            "SOCKS5 username/password rejected", auth=True),
    raw_row("no login offered", GREETING, b"\x05\xff",
            "SOCKS5 client offers no 'username/password' (--local-auth is on) method", auth=True),
    raw_row("login then BIND", b"\x05\x01\x02" + b"\x01\x05alice\x06s3cret\x05\x02"
            + CONNECT_V4[2:], b"\x05\x02\x01\x00" + socks_reply(7),
            "SOCKS5 command 2 not supported", auth=True),
]


@pytest.mark.parametrize("sent, answer, logged, options", RAW_ROWS)
def test_bad_bytes_on_the_local_port_get_the_right_reply_and_a_log_line(
        sent, answer, logged, options, local_port, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(inbound_module, "HANDSHAKE_TIMEOUT", 0.5)
    port = local_port(LocalAuth("alice", "s3cret") if options.get("auth") else None).address[1]
    assert exchange(port, sent, pause=options.get("pause", 0.0),
                    eof=options.get("eof", False)) == answer
    eventually(lambda: logged in caplog.text, 5.0, "the log line")
    assert "Traceback" not in caplog.text and "ERROR" not in caplog.text


UDP_ROWS = [
    pytest.param(b"\x00", "SOCKS5 UDP datagram too short; dropped", id="3 bytes"),
    pytest.param(b"\x00\x00\x01\x01\x7f\x00\x00\x01\x00\x50x",
                 "fragmented SOCKS5 datagram (FRAG != 0) dropped", id="fragment"),
    pytest.param(b"\x00\x00\x00\x09\x00\x50x", "unknown SocksAddr address type 0x09; dropped",
                 id="address type 9"),
    pytest.param(b"\x00\x00\x00\x01\x7f\x00", "SOCKS5 UDP datagram header truncated; dropped",
                 id="header cut short"),
    pytest.param(b"\x00\x00\x00\x03\x00\x00\x50x", "empty domain name in SocksAddr; dropped",
                 id="empty domain"),
]


@pytest.mark.parametrize("datagram, logged", UDP_ROWS)
def test_a_bad_udp_datagram_is_dropped_and_the_association_goes_on(datagram, logged,
                                                                    local_port, caplog):
    caplog.set_level(logging.INFO)
    port = local_port().address[1]
    echo = UdpEcho()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as control, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            control.sendall(GREETING + b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
            reply = control.recv(2) + control.recv(10)
            assert reply[:4] == b"\x05\x00\x05\x00"
            relay = (socket.inet_ntoa(reply[6:10]), int.from_bytes(reply[10:12], "big"))
            udp.settimeout(10)
            udp.sendto(datagram, relay)
            eventually(lambda: logged in caplog.text, 5.0, "the log line")
            good = b"\x00\x00\x00\x01" + socket.inet_aton(echo.address[0]) + \
                echo.address[1].to_bytes(2, "big")
            udp.sendto(good + b"still here", relay)
            assert udp.recvfrom(2048)[0] == good + b"still here"
    finally:
        echo.close()
    assert "Traceback" not in caplog.text and "ERROR" not in caplog.text


# ---- rows that need a process of their own ------------------------------------------------------


def without_file_permission_override() -> None:
    """preexec_fn: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so that
    the root child that is exec'd next cannot read a chmod 000 file (capabilities(7))."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for capability in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(argv: list[str], *, env: dict | None = None, preexec_fn=None,
        pipe_to_head: bool = False) -> subprocess.CompletedProcess:
    """``python -m anytls_ref ARGV`` (or ``python -m MODULE`` for ``-m`` argv); with
    ``pipe_to_head``, its stdout is read for one line and then closed, as ``| head -1`` does."""
    command = [sys.executable, *(argv if argv[0] == "-m" else ["-m", "anytls_ref", *argv])]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("ANYTLS_PASSWORD", None)
    if not pipe_to_head:
        return subprocess.run(command, capture_output=True, text=True, env=full_env,
                              preexec_fn=preexec_fn, timeout=60)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full_env)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes, as head does after its lines
    err = proc.stderr.read()
    proc.stderr.close()
    return subprocess.CompletedProcess(command, proc.wait(timeout=60), first.decode(),
                                       err.decode())


def can_drop_capabilities() -> bool:
    try:
        subprocess.run(["true"], preexec_fn=without_file_permission_override, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@pytest.mark.parametrize("argv, error", [
    pytest.param(["server", "-p", "pw", "-l", "127.0.0.1:0", "--cert", "{locked_cert}",
                  "--key", "{key}"], "certificate {locked_cert}: Permission denied",
                 id="certificate unreadable"),
    pytest.param(["server", "-p", "pw", "-l", "127.0.0.1:0", "--cert", "{cert}",
                  "--key", "{locked_key}"], "key {locked_key}: Permission denied",
                 id="key unreadable"),
    pytest.param(["client", "-s", "127.0.0.1:1", "-p", "pw", "--ca", "{locked_cert}"],
                 "CA file {locked_cert}: Permission denied", id="CA unreadable"),
])
def test_an_unreadable_file_is_named_not_the_listen_address(argv, error, files):
    if os.geteuid() == 0 and not can_drop_capabilities():
        pytest.skip("root without CAP_SETPCAP cannot make a file unreadable to itself")
    result = run([word.format(**files) for word in argv],
                 preexec_fn=without_file_permission_override if os.geteuid() == 0 else None)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"{ERROR}{error.format(**files)}\n")


def test_log_level_trace_in_the_environment_is_one_line_from_a_real_process():
    result = run(["server", "-p", "pw", "-l", "127.0.0.1:0"], env={"LOG_LEVEL": "trace"})
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"{ERROR}LOG_LEVEL='trace' is not a log level: debug, info, warning, error\n")


@pytest.mark.parametrize("argv", [
    pytest.param(["demo", "--trace"], id="demo --trace | head -1"),
    pytest.param(["padding", "--samples", "5000"], id="padding | head -1"),
    pytest.param(["-m", "anytls_ref.tools.spec_report"], id="spec_report | head -1"),
])
def test_output_into_a_pipe_closed_early_ends_quietly(argv):
    result = run(argv, pipe_to_head=True)
    assert result.stdout  # it did print, and the reader went after one line
    assert (result.returncode, "Traceback" in result.stderr, "Error" in result.stderr) == (
        0, False, False), result.stderr


def test_errno_names_used_by_the_rows_are_this_system_s():
    # the rows quote strerror texts; a libc with other words would fail them for that reason
    assert (os.strerror(errno.EISDIR), os.strerror(errno.ELOOP), os.strerror(errno.EACCES)) == (
        "Is a directory", "Too many levels of symbolic links", "Permission denied")
