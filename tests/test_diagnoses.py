"""The client's diagnoses (issue 18 item 2, net/diagnose.py): each common failure is recreated
and the client's log must name the likely cause and the next step.

wrong password (our server, anytls-go's, a server whose fallback is a web server), a plain HTTP
server where the anytls server should be, a self-signed certificate, an SNI mismatch, nothing
listening, a target the server cannot reach; and ``probe server`` against a wrong password.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys

import pytest
import socks

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.tls import write_self_signed
from anytls_ref.probe.scripting import eventually
from anytls_ref.probe.targets import refused_port
from interop import peers as peer_mod
from interop.targets import HTTPTarget, OneConnection

PASSWORD = "diagnoses"
WRONG = "not the password"


def socks_attempt(proxy: ProxyInbound, target: tuple[str, int]) -> None:
    """One connection through the local SOCKS5 port; how it fails does not matter here."""
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", proxy.address[1])
    sock.settimeout(10)
    with sock:
        try:
            sock.connect(target)
            sock.sendall(b"hello")
            sock.recv(100)
        except (OSError, socks.ProxyError):
            pass


def client_log_after_one_attempt(caplog, server: tuple[str, int], target: tuple[str, int],
                                 **config) -> str:
    caplog.set_level(logging.INFO)
    config.setdefault("insecure", True)
    client = Client(ClientConfig(server, config.pop("password", PASSWORD), **config))
    with ProxyInbound(("127.0.0.1", 0), client) as proxy:
        socks_attempt(proxy, target)
        eventually(lambda: "WARNING" in caplog.text or "could not reach" in caplog.text, 10.0,
                   "a diagnosis")
    assert "Traceback" not in caplog.text
    return caplog.text


WRONG_PASSWORD_HINT = ("closed the connection right after the authentication, before sending "
                       "anything: wrong password? (an anytls server closes on a wrong one) "
                       "check -p")


def test_wrong_password_against_our_server(caplog, echo_server):
    with Server(ServerConfig(("127.0.0.1", 0), PASSWORD)) as server:
        text = client_log_after_one_attempt(caplog, server.address, echo_server.address,
                                            password=WRONG)
    assert f"127.0.0.1:{server.address[1]} {WRONG_PASSWORD_HINT}" in text


NGINX_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n")


def nginx_like() -> OneConnection:
    """A web server as nginx answers bytes that are not HTTP: a 400 status line, then close,
    lingering as nginx does (reading what still comes until EOF): closing with unread bytes
    would reset the connection, and the reset can overtake the answer on its way back."""
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(NGINX_ANSWER)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(5.0)  # nginx's lingering_timeout
        while conn.recv(65536):
            pass

    return OneConnection(answer)


@pytest.mark.parametrize("web_server, answer", [(nginx_like, "HTTP/1.1 400 Bad Request"),
                                                (HTTPTarget, "<!DOCTYPE HTML>")],
                         ids=["nginx-like", "python http.server"])
def test_wrong_password_against_a_server_whose_fallback_is_a_web_server(web_server, answer,
                                                                        caplog, echo_server):
    web = web_server()
    try:
        with Server(ServerConfig(("127.0.0.1", 0), PASSWORD, fallback=web.address)) as server:
            text = client_log_after_one_attempt(caplog, server.address, echo_server.address,
                                                password=WRONG)
    finally:
        web.close()
    assert (f"127.0.0.1:{server.address[1]} answered like a web server ({answer!r}) right after "
            "the authentication: wrong password? (an anytls server hands a failed "
            "authentication to its fallback web server) check -p") in text


@pytest.fixture
def anytls_go_server(installed_peer, tmp_path):
    """A real anytls-go server (interop/peers.py), started as the interop matrix starts it."""
    peer = installed_peer("anytls-go")
    port = peer_mod.free_port()
    proc = peer.start_server(tmp_path, port, PASSWORD)
    try:
        peer_mod.wait_for_port("127.0.0.1", port, timeout=15.0, proc=proc)
        yield ("127.0.0.1", port)
    finally:
        peer_mod.stop(proc)


def test_wrong_password_against_anytls_go(caplog, echo_server, anytls_go_server):
    text = client_log_after_one_attempt(caplog, anytls_go_server, echo_server.address,
                                        password=WRONG)
    assert f"127.0.0.1:{anytls_go_server[1]} {WRONG_PASSWORD_HINT}" in text


def test_probe_server_stops_at_a_wrong_password_against_anytls_go(anytls_go_server):
    result = subprocess.run([sys.executable, "-m", "anytls_ref", "probe", "server",
                             "127.0.0.1:%d" % anytls_go_server[1], "-p", WRONG, "--insecure"],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"anytls-ref: error: authentication failed: 127.0.0.1:{anytls_go_server[1]} "
               "closed the connection right after the password: wrong -p? (no check can pass "
               "without the password)\n")


def test_a_plain_http_server_is_not_an_anytls_server(caplog, echo_server):
    web = HTTPTarget()
    try:
        text = client_log_after_one_attempt(caplog, web.address, echo_server.address)
    finally:
        web.close()
    assert (f"127.0.0.1:{web.address[1]} answered, but not with TLS: is this an anytls server? "
            "it answered plain TCP/HTTP (check the address and port)") in text


def test_a_self_signed_server_names_pin_ca_and_insecure(caplog, echo_server):
    with Server(ServerConfig(("127.0.0.1", 0), PASSWORD)) as server:
        text = client_log_after_one_attempt(caplog, server.address, echo_server.address,
                                            insecure=False)
    assert ("certificate verify failed (self-signed certificate): add --pin SHA256 (the "
            "fingerprint the server logs at start), --ca FILE, or --insecure") in text


def test_an_sni_mismatch_says_to_set_sni(caplog, echo_server, tmp_path):
    cert, key = write_self_signed(str(tmp_path))  # for localhost and 127.0.0.1
    with Server(ServerConfig(("127.0.0.1", 0), PASSWORD, cert, key)) as server:
        text = client_log_after_one_attempt(caplog, server.address, echo_server.address,
                                            insecure=False, ca_file=cert, sni="wrong.example")
    assert ("certificate verify failed: it is not for 'wrong.example' (SNI mismatch): set --sni "
            "to a name the certificate holds, or check it with --pin SHA256 instead, or "
            "--insecure") in text


def test_nothing_listening_is_server_unreachable(caplog, echo_server):
    port = refused_port()
    text = client_log_after_one_attempt(caplog, ("127.0.0.1", port), echo_server.address)
    assert (f"server unreachable: nothing listens on 127.0.0.1:{port} (connection refused): is "
            "the server running, and the port right?") in text


def test_a_refused_target_is_the_server_s_report(caplog):
    port = refused_port()
    with Server(ServerConfig(("127.0.0.1", 0), PASSWORD)) as server:
        text = client_log_after_one_attempt(caplog, server.address, ("127.0.0.1", port))
    assert (f"the anytls server could not reach the target: dial 127.0.0.1:{port}: Connection "
            "refused (the server and the client are fine; the target is down or blocked from "
            "the server)") in text
    assert "WARNING" not in text  # nothing is wrong with the client or its server
