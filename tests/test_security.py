"""Security (issue 9): the password check is constant-time, the password never reaches a log,
a wrong-password visitor of a ``--fallback`` server gets exactly what the fallback service
would have sent, the client refuses an unverifiable certificate unless told otherwise, and
nothing older than TLS 1.2 is spoken."""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import inspect
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from pathlib import Path

import pytest
import socks

import anytls_ref.auth as auth_mod
from anytls_ref.auth import check_auth, encode_auth, password_hash
from anytls_ref.errors import AuthenticationError
from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.net.tls import client_context, server_context, write_self_signed
from anytls_ref.socksaddr import SocksAddr
from anytls_ref.probe.rawclient import RawClient
from anytls_ref.probe.scripting import eventually
from interop.targets import HTTP_BODY

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Passw0rd/for the log test"
HASH = password_hash(PASSWORD)


# ---- constant-time password check ----------------------------------------------------------


class Spy:
    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, a, b):
        self.calls.append((bytes(a), bytes(b)))
        return self.real(a, b)


@pytest.fixture
def compare_spy(monkeypatch):
    spy = Spy(auth_mod.hmac.compare_digest)
    monkeypatch.setattr(auth_mod.hmac, "compare_digest", spy)
    return spy


def test_check_auth_compares_the_hash_with_hmac_compare_digest(compare_spy):
    assert check_auth(encode_auth(HASH, 0), HASH).padding0_length == 0
    assert compare_spy.calls == [(HASH, HASH)]


@pytest.mark.parametrize("wrong_at", [0, 15, 31])
def test_a_wrong_hash_costs_the_same_wherever_it_differs(compare_spy, wrong_at):
    """One compare_digest of two full 32-byte values, the same error, whichever byte is
    wrong: nothing in the path depends on how much of the hash matched."""
    wrong = bytearray(HASH)
    wrong[wrong_at] ^= 1
    with pytest.raises(AuthenticationError) as err:
        check_auth(bytes(wrong) + bytes(2), HASH)
    assert str(err.value) == "wrong password"
    assert compare_spy.calls == [(bytes(wrong), HASH)]


@pytest.mark.parametrize("length", [0, 1, 31])
def test_a_short_request_is_compared_too(compare_spy, length):
    with pytest.raises(AuthenticationError):
        check_auth(HASH[:length], HASH)
    assert len(compare_spy.calls) == 1
    assert [len(a) for a in compare_spy.calls[0]] == [32, 32]


HASH_A, HASH_B = password_hash("alice's password"), password_hash("bob's password")


@pytest.mark.parametrize("sent,user", [(HASH_A, 0), (HASH_B, 1), (HASH, None)],
                         ids=["first user", "second user", "nobody"])
def test_with_two_users_every_hash_is_compared_whichever_matches(compare_spy, sent, user):
    """Two users (decisions.md D44): both hashes are compared, in the same order, whether the
    first matches, the second, or neither: the work does not tell which user it was."""
    if user is None:
        with pytest.raises(AuthenticationError):
            check_auth(encode_auth(sent, 0), [HASH_A, HASH_B])
    else:
        assert check_auth(encode_auth(sent, 0), [HASH_A, HASH_B]).user == user
    assert compare_spy.calls == [(sent, HASH_A), (sent, HASH_B)]


def test_with_two_users_a_short_request_is_compared_with_both(compare_spy):
    with pytest.raises(AuthenticationError):
        check_auth(HASH_A[:5], [HASH_A, HASH_B])
    assert [(len(a), b) for a, b in compare_spy.calls] == [(32, HASH_A), (32, HASH_B)]


def _compares(function) -> list[ast.Compare]:
    tree = ast.parse(inspect.getsource(function).lstrip())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]


def test_no_plain_comparison_touches_a_hash():
    """Structure: no ==, !=, in, startswith on the hash anywhere on the server's path."""
    for node in _compares(check_auth) + _compares(auth_mod.matching_user):
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        assert "expected_hash" not in names, ast.unparse(node)
        assert not any(isinstance(n, ast.Subscript) for n in ast.walk(node)), ast.unparse(node)
    for path in (ROOT / "anytls_ref" / "net").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                text = ast.unparse(node)
                assert "password_hash" not in text and "_hash" not in text, (path.name, text)
            if isinstance(node, ast.Attribute) and node.attr == "startswith":
                assert "hash" not in ast.unparse(node.value), (path.name, ast.unparse(node))


# ---- the password never reaches a log ------------------------------------------------------


def secret_forms(password: str) -> dict[str, str]:
    digest = hashlib.sha256(password.encode()).digest()
    return {
        "password": password,
        "password hex": password.encode().hex(),
        "url-quoted password": urllib.parse.quote(password, safe=""),
        "sha256 hex": digest.hex(),
        "sha256 HEX": digest.hex().upper(),
        "sha256 repr": repr(digest)[2:-1][:40],
        "sha256 base64": base64.b64encode(digest).decode()[:40],
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    def up() -> bool:
        assert proc.poll() is None, "process exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    eventually(up, 20.0, f"port {port} listening")


def test_the_password_is_in_no_log_at_any_level(http_server, tmp_path):
    """Server and clients (the right password, a wrong one, one given in an anytls:// URI) run
    with --log-level debug and --trace; a page is fetched, a wrong password fails, a bad
    target fails. Their whole output holds neither password in any form."""
    wrong = "wr0ng-Passw0rd/also secret"
    sport, cport, wport = free_port(), free_port(), free_port()
    base = [sys.executable, "-m", "anytls_ref", "--log-level", "debug"]
    uri = f"anytls://{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:{sport}/?insecure=1"
    commands = {
        "server": [*base, "server", "-l", f"127.0.0.1:{sport}", "-p", PASSWORD, "--trace"],
        "client": [*base, "client", "-l", f"127.0.0.1:{cport}", "-s", uri, "--trace"],
        "wrong client": [*base, "client", "-l", f"127.0.0.1:{wport}", "-s",
                         f"127.0.0.1:{sport}", "-p", wrong, "--insecure", "--trace"],
    }
    procs, outputs = {}, {}
    try:
        for name, argv in commands.items():
            procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, port in (("server", sport), ("client", cport), ("wrong client", wport)):
            wait_listening(port, procs[name])
        with socks.create_connection(http_server.address, proxy_type=socks.SOCKS5,
                                     proxy_addr="127.0.0.1", proxy_port=cport,
                                     timeout=10) as sock:
            sock.sendall(b"GET /logged HTTP/1.0\r\nHost: t\r\n\r\n")
            body = b""
            while data := sock.recv(1 << 16):
                body += data
        assert body.endswith(HTTP_BODY + b"path=/logged\n")
        # a refused target, through the right client: answered at once (D34), then closed
        with socks.create_connection(("127.0.0.1", free_port()), proxy_type=socks.SOCKS5,
                                     proxy_addr="127.0.0.1", proxy_port=cport,
                                     timeout=10) as refused:
            assert refused.recv(1) == b""
        with pytest.raises((socks.ProxyError, OSError)):  # the wrong password fails
            s = socks.create_connection(http_server.address, proxy_type=socks.SOCKS5,
                                        proxy_addr="127.0.0.1", proxy_port=wport, timeout=10)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if not s.recv(1):
                raise OSError("closed")
    finally:
        for name, proc in procs.items():
            proc.terminate()
            outputs[name] = proc.communicate(timeout=20)[0].decode(errors="replace")
    everything = "\n".join(outputs.values())
    assert "authentication failed" in outputs["server"]  # the wrong client was logged...
    assert " ← " in outputs["server"] or "SETTINGS" in outputs["server"].upper()  # ...traced
    for secret in (PASSWORD, wrong):
        for form, text in secret_forms(secret).items():
            assert text not in everything, f"the {form} of a password is in a log"


# ---- fallback: byte for byte what the fallback service sends -------------------------------


class FixedHandler(http.server.BaseHTTPRequestHandler):
    """A real HTTP server whose answers depend only on the request: fixed Date and Server."""

    protocol_version = "HTTP/1.0"
    timeout = 10

    def date_time_string(self, timestamp=None) -> str:
        return "Thu, 01 Jan 2026 00:00:00 GMT"

    def version_string(self) -> str:
        return "fixed-test-server/1.0"

    def do_GET(self) -> None:  # noqa: N802
        body = HTTP_BODY + f"path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def fixed_http():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FixedHandler)
    httpd.daemon_threads = False
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="fixed-http")
    thread.start()
    yield httpd.server_address[:2]
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def direct_visit(address, pieces: list[bytes]) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        for piece in pieces:
            sock.sendall(piece)
        return _read_all(sock)


def _read_all(sock) -> bytes:
    chunks = []
    while data := sock.recv(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def fallback_visit(address, pieces: list[bytes]) -> bytes:
    """A TLS visitor of the anytls server; each piece is one TLS record."""
    with RawClient(address) as peer:
        for n, piece in enumerate(pieces):
            if n:  # the server's first read ends with the first piece
                time.sleep(0.05)
            peer.send_raw(piece)
        return peer.recv_raw_until_closed(timeout=5.0)


VISITS = {
    "GET in one record": [b"GET /probe?q=1 HTTP/1.0\r\nHost: example.test\r\n\r\n"],
    "GET split after 5 bytes": [b"GET /", b"split HTTP/1.0\r\nHost: example.test\r\n\r\n"],
    "an anytls request with a wrong password": [
        encode_auth(password_hash("not the password"), 30) + b"\x04\x00\x00\x00\x00\x00\x03v=2"
        + b"\r\n\r\n"],
    "garbage": [bytes(range(256)) * 2],
}


@pytest.mark.parametrize("visit", list(VISITS))
def test_fallback_answers_byte_for_byte_as_the_service_itself(fixed_http, visit):
    pieces = VISITS[visit]
    with Server(ServerConfig(listen=("127.0.0.1", 0), password=PASSWORD,
                             fallback=fixed_http)) as server:
        via_anytls = fallback_visit(server.address, pieces)
    direct = direct_visit(fixed_http, pieces)
    assert direct  # the service answers something (a 200, or its error page)
    assert via_anytls == direct


# ---- certificate verification --------------------------------------------------------------


@pytest.fixture
def cert_server(tmp_path):
    cert, key = write_self_signed(str(tmp_path))
    with Server(ServerConfig(listen=("127.0.0.1", 0), password=PASSWORD, cert_file=cert,
                             key_file=key)) as server:
        yield server, cert


def try_stream(address, target=("127.0.0.1", 9), **config) -> None:
    with Client(ClientConfig(server=address, password=PASSWORD, **config)) as client:
        stream = client.open_stream(SocksAddr(*target))
        stream.close()


def test_an_unverifiable_certificate_is_refused(cert_server, tmp_path):
    server, _ = cert_server
    with pytest.raises(ssl.SSLCertVerificationError):
        try_stream(server.address)
    other_ca, _ = write_self_signed(str(tmp_path / ".."), "someone-else")
    with pytest.raises(ssl.SSLCertVerificationError):
        try_stream(server.address, ca_file=other_ca)
    assert server.stats.sessions == 0


def test_insecure_or_the_right_ca_is_accepted(cert_server, echo_server):
    server, cert = cert_server
    try_stream(server.address, echo_server.address, insecure=True)
    try_stream(server.address, echo_server.address, ca_file=cert)
    try_stream(server.address, echo_server.address, ca_file=cert, sni="localhost")
    eventually(lambda: server.stats.sessions == 3, 3.0, "three sessions")


def test_the_uri_insecure_flag_is_the_only_other_way():
    from anytls_ref.config.links import parse_link

    # a link without the parameter leaves the default (verify) to the client: None, not True
    assert not parse_link("anytls://p@h:1/").insecure
    assert parse_link("anytls://p@h:1/?insecure=1").insecure is True
    assert client_context().verify_mode == ssl.CERT_REQUIRED
    assert client_context().check_hostname is True


# ---- TLS 1.2 or newer ----------------------------------------------------------------------


def old_tls_context(version: ssl.TLSVersion, *, server: bool = False) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = version
    if not server:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_a_tls_1_1_client_is_refused_and_1_2_is_accepted():
    with Server(ServerConfig(listen=("127.0.0.1", 0), password=PASSWORD)) as server:
        with pytest.raises(ssl.SSLError, match="(?i)protocol version|unsupported protocol"):
            RawClient(server.address, context=old_tls_context(ssl.TLSVersion.TLSv1_1))
        with RawClient(server.address,
                       context=old_tls_context(ssl.TLSVersion.TLSv1_2)) as peer:
            assert peer.tls.version() == "TLSv1.2"
    assert server_context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_the_client_refuses_a_tls_1_1_server(tmp_path):
    cert, key = write_self_signed(str(tmp_path))
    ctx = old_tls_context(ssl.TLSVersion.TLSv1_1, server=True)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: list[BaseException | str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                ctx.wrap_socket(conn, server_side=True)
                outcome.append("handshake completed")
            except (ssl.SSLError, OSError) as exc:
                outcome.append(exc)

    thread = threading.Thread(target=serve, name="tls11-server")
    thread.start()
    try:
        with pytest.raises(ssl.SSLError):
            try_stream(listener.getsockname()[:2], insecure=True)
    finally:
        thread.join(5)
        listener.close()
    assert outcome and outcome[0] != "handshake completed"
    assert client_context(insecure=True).minimum_version == ssl.TLSVersion.TLSv1_2
