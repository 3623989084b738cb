"""The client's local proxy port: HTTP proxy requests (net/httpproxy.py) and --local-auth.

Every bad request gets the status that says what is wrong (400, 408, 414, 431) and the
connection is closed; --local-auth turns on SOCKS5 username/password (RFC 1929) and HTTP
Proxy-Authorization: Basic (RFC 7617).
"""

from __future__ import annotations

import base64
import logging
import socket
import time

import pytest
import socks

from anytls_ref.net.httpproxy import BadRequest, parse_head, read_request
from anytls_ref.net.inbound import LocalAuth
from anytls_ref.probe.scripting import eventually
from anytls_ref.probe.targets import refused_port
from anytls_ref.socksaddr import SocksAddr

PASSWORD = "inbound test"


def http_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


# ---- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("head, status, why", [
    (b"GET http://h:99999/ HTTP/1.1", 400, "bad URI"),
    (b"GET http://h:0/ HTTP/1.1", 400, "bad port"),
    (b"GET http://[::1/ HTTP/1.1", 400, "bad URI"),
    (b"GET http://[::zz]/ HTTP/1.1", 400, "bad URI"),
    (b"GET https://example.com/ HTTP/1.1", 400, "not a proxy request"),
    (b"GET / HTTP/1.1\r\nHost: example.com", 400, "not a proxy request"),
    (b"GET http:/// HTTP/1.1", 400, "not a proxy request"),
    (b"GET http://bad host/ HTTP/1.1", 400, "bad HTTP request line"),
    (b"GET http://bad_host!/ HTTP/1.1", 400, "bad host name"),
    (b"GET http://h/ SMTP/1.0", 400, "bad HTTP request line"),
    (b"HELO example.com", 400, "bad HTTP request line"),
    (b"CONNECT example.com HTTP/1.1", 400, "is not HOST:PORT"),
    (b"CONNECT example.com:70000 HTTP/1.1", 400, "bad port"),
    (b"CONNECT ::1:443 HTTP/1.1", 400, "needs [ ]"),
    (b"CONNECT [::1:443 HTTP/1.1", 400, "unbalanced [ ]"),
    (b"CONNECT [::zz]:443 HTTP/1.1", 400, "bad IPv6"),
    (b"CONNECT h:443 HTTP/1.1\r\nno colon here", 400, "bad header line"),
    (b"CONNECT h:443 HTTP/1.1\r\n Folded: header", 400, "bad header line"),
])
def test_a_bad_request_head_is_a_400_that_says_why(head, status, why):
    with pytest.raises(BadRequest) as caught:
        parse_head(head, b"")
    assert caught.value.status == status and why in str(caught.value)


def test_an_absolute_uri_request_goes_on_in_origin_form_with_the_uri_s_host():
    request = parse_head(b"GET http://user@example.com:8080/a?b=1 HTTP/1.1\r\n"
                         b"Host: wrong.example\r\nProxy-Connection: keep-alive\r\n"
                         b"Proxy-Authorization: Basic eDp5\r\nAccept: */*", b"body")
    assert request.target == SocksAddr("example.com", 8080) and not request.tunnel
    assert request.authorization == "Basic eDp5"
    assert request.first == (b"GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n"
                             b"Connection: close\r\n\r\nbody")


def test_connect_takes_ipv6_in_brackets_and_keeps_early_bytes():
    request = parse_head(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443", b"\x16\x03\x01")
    assert (request.target, request.tunnel, request.first) == (SocksAddr("::1", 443), True,
                                                               b"\x16\x03\x01")


@pytest.mark.parametrize("sent, status", [
    (b"GET http://h/" + b"a" * 9000 + b" HTTP/1.1\r\n", 414),
    (b"GET http://h/ HTTP/1.1\r\n" + b"X-A: b\r\n" * 10000, 431),
])
def test_an_oversized_request_line_or_head_is_refused_before_it_is_all_read(sent, status):
    a, b = socket.socketpair()
    with a, b:
        a.sendall(sent[:100_000])
        with pytest.raises(BadRequest) as caught:
            read_request(b, time.monotonic() + 5)
    assert caught.value.status == status


def test_a_slow_sender_gets_408_at_the_deadline_not_a_thread_held_for_ever():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GET http://h/ HTTP/1.1\r\n")  # and never the rest
        start = time.monotonic()
        with pytest.raises(BadRequest) as caught:
            read_request(b, start + 0.3)
        assert caught.value.status == 408 and time.monotonic() - start < 2


def test_bad_requests_are_answered_through_the_port_and_logged_without_a_traceback(
        make_proxy, caplog):
    caplog.set_level(logging.INFO)
    inbound = make_proxy()
    for request in (b"GET http://h:99999/ HTTP/1.1\r\n\r\n", b"GET http://[::1/ HTTP/1.1\r\n\r\n"):
        answer = http_exchange(inbound.address[1], request)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"bad URI" in answer
    assert "Traceback" not in caplog.text and "ERROR" not in caplog.text


# ---- --local-auth -----------------------------------------------------------------------------


def test_socks5_with_the_right_credentials_gets_through(make_proxy, echo_server):
    inbound = make_proxy(auth=LocalAuth("alice", "s3cret"))
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", inbound.address[1], username="alice",
                   password="s3cret")
    sock.settimeout(10)
    with sock:
        sock.connect(echo_server.address)
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"


@pytest.mark.parametrize("credentials", [{}, {"username": "alice", "password": "wrong"},
                                         {"username": "bob", "password": "s3cret"}])
def test_socks5_without_or_with_wrong_credentials_is_refused(make_proxy, echo_server,
                                                             credentials):
    inbound = make_proxy(auth=LocalAuth("alice", "s3cret"))
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", inbound.address[1], **credentials)
    sock.settimeout(10)
    with sock, pytest.raises(socks.ProxyError) as caught:
        sock.connect(echo_server.address)
    # no method offered: 0xFF "no acceptable methods"; wrong ones: RFC 1929 status 1
    expected = "All offered SOCKS5 authentication methods were rejected" if not credentials \
        else "SOCKS5 authentication failed"
    assert expected in str(caught.value)


def _basic(user: str, password: str) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Proxy-Authorization: Basic {token}\r\n".encode()


def test_http_with_basic_credentials_gets_through_and_without_gets_407(make_proxy,
                                                                        http_server):
    inbound = make_proxy(auth=LocalAuth("alice", "s3cret"))
    host, port = http_server.address
    request = f"GET http://{host}:{port}/ HTTP/1.1\r\nHost: x\r\n".encode()
    answer = http_exchange(inbound.address[1], request + _basic("alice", "s3cret") + b"\r\n")
    assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200")
    for header in (b"", _basic("alice", "nope"), b"Proxy-Authorization: Bearer abc\r\n"):
        answer = http_exchange(inbound.address[1], request + header + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
        assert b'Proxy-Authenticate: Basic realm="anytls-ref"\r\n' in answer


def test_an_open_port_on_another_address_without_local_auth_is_warned_about(make_proxy,
                                                                            caplog):
    caplog.set_level(logging.WARNING, logger="anytls_ref.inbound")
    make_proxy(listen="127.0.0.1")
    assert "--local-auth" not in caplog.text
    make_proxy(listen="0.0.0.0")
    assert "without --local-auth" in caplog.text
    caplog.clear()
    make_proxy(listen="0.0.0.0", auth=LocalAuth("a", "b"))
    assert "--local-auth" not in caplog.text


# ---- what the application is told when the target is refused (decisions.md D34) -------------


def test_an_http_request_to_a_refused_target_is_a_502_without_waiting_by_default(make_proxy):
    # the request went out with the stream, so waiting for the answer cost nothing
    inbound = make_proxy()
    answer = http_exchange(inbound.address[1],
                           f"GET http://127.0.0.1:{refused_port()}/ HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"Connection refused" in answer


def test_connect_to_a_refused_target_is_answered_at_once_then_closed(make_proxy, caplog):
    caplog.set_level(logging.INFO, logger="anytls_ref.inbound")
    inbound = make_proxy()
    port = refused_port()
    answer = http_exchange(inbound.address[1], f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    assert answer == b"HTTP/1.1 200 Connection established\r\n\r\n"  # then the close
    # logged by the connection's thread once its relay has ended
    eventually(lambda: f"127.0.0.1:{port}: closed: " in caplog.text, 5, "the reason logged")
    assert "Connection refused" in caplog.text
