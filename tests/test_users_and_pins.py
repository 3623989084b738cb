"""Several users (decisions.md D44) and certificate pinning (D45), issue 17: two users on one
server each authenticate and are named in their session's log line, a wrong password is
refused; the server logs its certificate's SHA-256, ``--pin`` with it connects without
``--insecure`` or ``--ca``, a wrong pin fails with one line naming both fingerprints, and
``--cert-out`` + ``--ca`` works."""

from __future__ import annotations

import logging
import re
import ssl
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from anytls_ref.__main__ import build_parser
from anytls_ref.cli.options import client_config
from anytls_ref.config.model import User
from anytls_ref.config.pin import format_fingerprint
from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.stream import StreamOpenError
from anytls_ref.net.tls import PinMismatchError, write_self_signed
from anytls_ref.socksaddr import SocksAddr
from anytls_ref.probe.scripting import eventually
from socks_fetch import get_via_socks

ALICE, BOB = User("alice", "alice's secret"), User("bob", "bob's secret")


def open_one_stream(server: Server, password: str, target, **config) -> None:
    config.setdefault("insecure", True)
    with Client(ClientConfig(server=server.address, password=password, **config)) as client:
        stream = client.open_stream(SocksAddr(*target))
        stream.close()


def test_two_users_each_authenticate_and_are_named(echo_server, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref")
    with Server(ServerConfig(("127.0.0.1", 0), users=(ALICE, BOB))) as server:
        open_one_stream(server, ALICE.password, echo_server.address)
        open_one_stream(server, BOB.password, echo_server.address)
        for wrong in ("alice's secreT", "bob's secret ", "alice"):
            # waiting for the server's answer, so that the refusal reaches open_stream (by
            # default the client answers at once and the stream just ends)
            with pytest.raises((StreamOpenError, OSError)):
                open_one_stream(server, wrong, echo_server.address, wait_synack=True)
        # each refused (the client tries a second session once: D32's retry)
        eventually(lambda: server.stats.auth_failures >= 3, 5.0, "three failures")
        assert server.stats.sessions == 2
    sessions = [r.getMessage() for r in caplog.records if re.search(r": user \w+$", r.getMessage())]
    assert [line.rsplit(" ", 1)[1] for line in sessions] == ["alice", "bob"]
    text = caplog.text
    for user in (ALICE, BOB):
        assert user.password not in text
        assert user.password.encode().hex() not in text


def test_the_server_logs_its_certificate_fingerprint(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref.server")
    cert, key = write_self_signed(str(tmp_path))
    with open(cert, "rb") as f:
        expected = x509.load_pem_x509_certificate(f.read()).fingerprint(hashes.SHA256())
    with Server(ServerConfig(("127.0.0.1", 0), "pw", cert, key)) as server:
        assert server.fingerprint == expected
    with Server(ServerConfig(("127.0.0.1", 0), "pw")) as self_signed:
        made = x509.load_pem_x509_certificate(self_signed.certificate_pem)
        assert self_signed.fingerprint == made.fingerprint(hashes.SHA256())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("certificate")]
    assert lines == [f"certificate sha256 {format_fingerprint(expected)} ({cert})",
                     f"certificate sha256 {format_fingerprint(self_signed.fingerprint)} "
                     "(self-signed, made at start)"]


def test_the_pin_connects_without_insecure_or_ca(http_server):
    with Server(ServerConfig(("127.0.0.1", 0), "pw")) as server:
        config, _ = client_config(build_parser().parse_args(
            ["client", "-s", "127.0.0.1:%d" % server.address[1], "-p", "pw",
             "--pin", format_fingerprint(server.fingerprint)]))
        assert not config.insecure and config.ca_file is None
        with ProxyInbound(("127.0.0.1", 0), Client(config)) as proxy:
            assert get_via_socks(proxy.address[1], http_server.address, "/pinned").endswith(
                b"path=/pinned\n")
        # without the pin the self-signed certificate is refused, with a hint
        with pytest.raises(ssl.SSLCertVerificationError) as err:
            open_one_stream(server, "pw", http_server.address, insecure=False)
        assert str(err.value) == (
            "certificate verify failed (self-signed certificate): add --pin SHA256 (the "
            "fingerprint the server logs at start), --ca FILE, or --insecure")
        assert server.stats.sessions == 1


def test_a_wrong_pin_fails_with_one_line_naming_both(http_server, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref.server")
    with Server(ServerConfig(("127.0.0.1", 0), "pw")) as server:
        wrong = bytes(32)
        with pytest.raises(PinMismatchError) as err:
            open_one_stream(server, "pw", http_server.address, insecure=False, pin=wrong)
        assert str(err.value) == (
            f"server certificate sha256 {format_fingerprint(server.fingerprint)} is not the "
            f"pinned {format_fingerprint(wrong)}")
        # --insecure does not turn the pin off
        with pytest.raises(PinMismatchError):
            open_one_stream(server, "pw", http_server.address, insecure=True, pin=wrong)
        # nothing of anytls was sent: the server read no byte of an authentication, only the
        # end of the connection (a plain EOF, or a reset when TLS 1.3 tickets were left unread)
        ends = ("authentication failed (authentication request too short (0 bytes))",
                "closed during authentication: [Errno 104] Connection reset by peer")

        def ended() -> list[str]:
            return [r.getMessage().split(": ", 1)[1] for r in caplog.records
                    if r.getMessage().startswith("conn ")]

        eventually(lambda: len(ended()) == 2, 5.0, "both connections ended")
        assert all(line in ends for line in ended()), ended()
        assert server.stats.sessions == 0


def test_cert_out_then_ca_and_the_logged_pin(tmp_path, http_server):
    """The CLI server: its logged fingerprint works as --pin, its --cert-out file as --ca."""
    cert_out = tmp_path / "server.pem"
    proc = subprocess.Popen([sys.executable, "-m", "anytls_ref", "server", "-l", "127.0.0.1:0",
                             "-p", "pw", "--cert-out", str(cert_out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 20
        for line in proc.stdout:
            output.append(line)
            if "clients: --pin" in line or time.monotonic() > deadline:
                break
        text = "".join(output)
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", text)[1])
        pin = re.search(r"certificate sha256 ([0-9A-F:]{95}) \(self-signed", text)[1]
        assert f"anytls://PASSWORD@127.0.0.1:{port}/?hpkp={pin.replace(':', '').lower()}" in text
        for flags in (["--pin", pin], ["--ca", str(cert_out)]):
            config, _ = client_config(build_parser().parse_args(
                ["client", "-s", f"127.0.0.1:{port}", "-p", "pw", *flags]))
            with ProxyInbound(("127.0.0.1", 0), Client(config)) as proxy:
                body = get_via_socks(proxy.address[1], http_server.address, "/cert-out")
            assert body.endswith(b"path=/cert-out\n"), flags
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
