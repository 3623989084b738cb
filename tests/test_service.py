"""A service's manners (issue 18 items 3 to 5), tested on real processes: ``python -m
anytls_ref server`` and ``client`` as children, signalled as systemd or Ctrl-C would.

- start-up and stop lines, ISO 8601 times;
- SIGTERM/SIGINT: no new connections at once, running streams finish within ``--grace``, the
  rest is cut, exit code 0; a second signal exits at once;
- a flood of silent connections under ``ulimit -n 200``: little CPU, a warning at most once a
  second, the authenticated session keeps working, new clients get in once the flood ends;
- ``--max-connections`` and ``--local-auth`` on the command line (and a config's users);
- contrib/anytls-ref-server.service, the sample systemd unit, read as systemd would.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import datetime
import hashlib
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import socks

from anytls_ref import __version__
from anytls_ref.__main__ import build_parser
from anytls_ref.cli.service import DEFAULT_GRACE
from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.listener import RESERVED_FDS
from anytls_ref.probe.scripting import eventually
from anytls_ref.socksaddr import SocksAddr
from interop.targets import OneConnection

PASSWORD = "service test"
ROOT = Path(__file__).resolve().parents[1]
#: a log line's start: an ISO 8601 local time with its offset, to the millisecond
ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
MIB = 1 << 20


class Child:
    """``python -m anytls_ref ARGV`` as a child process; its log collected line by line by a
    thread that ``close()`` joins (the process is killed first if it still runs)."""

    def __init__(self, *argv: str, preexec_fn=None) -> None:
        env = {key: value for key, value in os.environ.items()
               if key not in ("ANYTLS_PASSWORD", "LOG_LEVEL")}
        self.proc = subprocess.Popen([sys.executable, "-m", "anytls_ref", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, preexec_fn=preexec_fn)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="child-log")
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """The first log line matching ``pattern``, once it is there."""
        found: list[re.Match] = []

        def seen() -> bool:
            found[:] = [m for line in list(self.lines) if (m := re.search(pattern, line))]
            if not found and self.proc.poll() is not None:
                self._reader.join()
                raise AssertionError(f"exited {self.proc.returncode} before {pattern!r}:\n"
                                     f"{self.log}")
            return bool(found)

        eventually(seen, timeout, f"log line {pattern!r}")
        return found[0]

    def port(self) -> int:
        return int(self.wait_for(r"listening on 127\.0\.0\.1:(\d+)")[1])

    def signal(self, sig: int) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def exit_code(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join()
        self.proc.stdout.close()


@pytest.fixture
def children():
    """Start Child processes; each is killed (if still running) and reaped at the end."""
    started: list[Child] = []

    def start(*argv: str, **options) -> Child:
        child = Child(*argv, **options)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()


def server_and_client(children, *server_flags: str, client_flags: tuple[str, ...] = ()):
    """Our server and our client as processes, the client pointed at the server."""
    server = children("server", "-l", "127.0.0.1:0", "-p", PASSWORD, *server_flags)
    port = server.port()
    client = children("client", "-l", "127.0.0.1:0", "-s", f"127.0.0.1:{port}", "-p", PASSWORD,
                      "--insecure", *client_flags)
    client.wait_for("proxy listening on")
    return server, port, client, client.port()


# ---- start-up and stop lines ---------------------------------------------------------------


def test_one_start_up_line_and_one_stop_line_with_iso_times(children):
    server = children("server", "-l", "127.0.0.1:0", "--user", "a:1", "--user", "b:2",
                      "--log-level", "debug")  # after the subcommand
    start = server.wait_for(
        rf"^({ISO_TIME}) INFO    anytls server listening on 127\.0\.0\.1:(\d+) \(anytls-ref "
        rf"{re.escape(__version__)}; 2 users; padding scheme md5 ([0-9a-f]{{32}}); certificate "
        r"sha256 ([0-9A-F:]{95})\)$")
    when = datetime.datetime.fromisoformat(start[1])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 60
    server.signal(signal.SIGTERM)
    assert server.exit_code() == 0
    assert re.search(rf"^{ISO_TIME} INFO    anytls server stopped: 0 sessions, 0 streams served "
                     r"\(0 connections, 0 failed authentications\)$", server.log, re.M)
    assert sum("stopped" in line for line in server.lines) == 1
    assert "Traceback" not in server.log


# ---- SIGTERM with a 100 MiB download running ----------------------------------------------------


class BigFile(OneConnection):
    """An HTTP/1.0 target that answers one GET with ``size`` bytes (a repeating MiB)."""

    def __init__(self, size: int = 100 * MIB) -> None:
        self.size = size
        self.block = hashlib.sha256(b"block").digest() * (MIB // 32)
        digest = hashlib.sha256()
        for _ in range(size // MIB):
            digest.update(self.block)
        self.sha256 = digest.hexdigest()
        super().__init__(self._send)

    def _send(self, conn: socket.socket) -> None:
        while b"\r\n\r\n" not in conn.recv(65536):
            pass
        conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {self.size}\r\n\r\n".encode())
        for _ in range(self.size // MIB):
            conn.sendall(self.block)


class Download:
    """A GET through the client's HTTP proxy port, read a part at a time."""

    def __init__(self, proxy_port: int, target: tuple[str, int]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=30)
        self.sock.sendall(f"GET http://{target[0]}:{target[1]}/big HTTP/1.1\r\n"
                          f"Host: {target[0]}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.0 200"), head
        self.digest = hashlib.sha256()
        self.received = 0

    def read(self, limit: int | None = None) -> bool:
        """Read up to ``limit`` bytes in all (None: until EOF); False once the EOF came."""
        while limit is None or self.received < limit:
            chunk = self.sock.recv(min(MIB, (limit or 1 << 62) - self.received))
            if not chunk:
                return False
            self.digest.update(chunk)
            self.received += len(chunk)
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def big_file():
    target = BigFile()
    yield target
    target.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@contextlib.contextmanager
def download_running(children, big_file: BigFile, grace: str, first: int):
    """Server and client processes (the server with ``--grace``), and a download through them
    of which ``first`` bytes have come: (server, its port, client, the download)."""
    server, port, client, proxy = server_and_client(children, "--grace", grace)
    download = Download(proxy, big_file.address)
    try:
        assert download.read(first)
        yield server, port, client, download
    finally:
        download.close()


def stop_client(client: Child, stop_line: str) -> None:
    client.signal(signal.SIGTERM)
    assert client.exit_code() == 0
    client.wait_for(stop_line)


def test_sigterm_lets_a_running_download_finish_within_the_grace_period(children, big_file):
    with download_running(children, big_file, "60", 5 * MIB) as (server, port, client, download):
        signalled = server.signal(signal.SIGTERM)
        server.wait_for(r"SIGTERM: not accepting connections; 1 running, given up to 60 s to "
                        r"finish \(--grace\)$")
        assert refused(port)  # no new connections at once, while the download goes on
        assert not download.read()  # to the end: the server closes the stream after its EOF
        finished = time.monotonic()
        assert (download.received, download.digest.hexdigest()) == (big_file.size,
                                                                    big_file.sha256)
    assert server.exit_code() == 0
    exited = time.monotonic()
    # it left as soon as the stream was done, not at the end of the 60 s
    assert exited - finished < 10 and exited - signalled < 60
    print(f"grace: the last 95 MiB took {finished - signalled:.2f} s after SIGTERM, the server "
          f"exited {exited - finished:.2f} s after the download ended")
    server.wait_for(r"anytls server stopped: 1 sessions, 1 streams served \(1 connections, 0 "
                    r"failed authentications\)$")
    stop_client(client, r"anytls client stopped: 1 sessions, 1 streams served$")
    client.wait_for(r"SIGTERM: not accepting connections; nothing running$")
    assert "Traceback" not in server.log + client.log


def test_sigterm_with_grace_0_cuts_the_download_and_exits_within_a_second(children, big_file):
    with download_running(children, big_file, "0", 5 * MIB) as (server, port, client, download):
        # the download stalls here (nothing reads it): the stream is running when the signal
        # comes and cannot finish by itself
        signalled = server.signal(signal.SIGTERM)
        assert server.exit_code(timeout=5) == 0
        took = time.monotonic() - signalled
        assert took < 1.0, f"exited {took:.2f} s after SIGTERM"
        print(f"--grace 0: exited {took:.3f} s after SIGTERM")
        assert not download.read()
        assert download.received < big_file.size
    server.wait_for(r"SIGTERM: not accepting connections; 1 running, given up to 0 s to finish")
    server.wait_for(r"anytls server stopped: 1 sessions, 1 streams served \(1 connections, 0 "
                    r"failed authentications\); 1 streams cut at the end of --grace$")
    stop_client(client, r"anytls client stopped: 1 sessions, 1 streams served")
    assert "Traceback" not in server.log + client.log


def test_a_second_signal_exits_at_once(children, big_file):
    with download_running(children, big_file, "60", MIB) as (server, port, client, download):
        server.signal(signal.SIGINT)  # Ctrl-C
        server.wait_for(r"SIGINT: not accepting connections; 1 running")
        again = server.signal(signal.SIGINT)
        assert server.exit_code(timeout=5) == 0
        assert time.monotonic() - again < 1.0
    assert server.lines[-1] == "anytls-ref: SIGINT again: exiting at once"
    assert "Traceback" not in server.log


def test_grace_defaults_to_5_seconds():
    assert DEFAULT_GRACE == 5.0
    assert build_parser().parse_args(["server", "-p", "x"]).grace == 5.0
    assert build_parser().parse_args(["client", "-s", "h:1", "-p", "x"]).grace == 5.0


# ---- a flood of silent connections under ulimit -n 200 ------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (proc(5): fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def limit_open_files_to_200() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))


def warning_times(child: Child, words: str) -> list[datetime.datetime]:
    return [datetime.datetime.fromisoformat(line.split(" ", 1)[0])
            for line in list(child.lines) if "WARNING" in line and words in line]


def echo(stream, payload: bytes) -> bytes:
    stream.sendall(payload)
    data = b""
    while len(data) < len(payload):
        chunk = stream.recv(timeout=10)
        assert chunk, "stream closed"
        data += chunk
    return data


@pytest.mark.parametrize("max_connections", [None, 1000], ids=["default limit",
                                                               "limit above the descriptors"])
def test_a_flood_of_silent_connections_is_survived_not_spun_on(max_connections, children,
                                                               echo_server):
    flags = ["--max-connections", str(max_connections)] if max_connections else []
    server = children("server", "-l", "127.0.0.1:0", "-p", PASSWORD, *flags,
                      preexec_fn=limit_open_files_to_200)
    port = server.port()
    target = SocksAddr(*echo_server.address)
    with Client(ClientConfig(("127.0.0.1", port), PASSWORD, insecure=True)) as client:
        first = client.open_stream(target)
        assert echo(first, b"before the flood") == b"before the flood"
        silent = []
        try:
            for _ in range(400):
                silent.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            # the condition is met: the server says so, once
            words = "connections, the limit" if max_connections is None else "accept failed"
            eventually(lambda: warning_times(server, words), 10.0, "the warning")
            before, started = cpu_seconds(server.proc.pid), time.monotonic()
            time.sleep(3.0)  # the measuring window
            used = (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - started)
            assert used < 0.10, f"{used:.1%} of a core during the flood"
            times = warning_times(server, words)
            spread = (times[-1] - times[0]).total_seconds()
            assert len(times) <= spread + 1.5, f"{len(times)} warnings in {spread:.1f} s"
            # the authenticated session is served all along: its stream, and a new one on it
            assert echo(first, b"during the flood") == b"during the flood"
            if max_connections is None:  # with descriptors to spare for its target
                first.close()
                eventually(lambda: client.idle_sessions(), 5.0, "the session back in the pool")
                second = client.open_stream(target)
                assert client.stats.reused == 1  # on the same session
                assert echo(second, b"new stream") == b"new stream"
                second.close()
            else:
                first.close()
        finally:
            for sock in silent:
                sock.close()
        # the silent connections are gone: a new client gets in
        with Client(ClientConfig(("127.0.0.1", port), PASSWORD, insecure=True)) as newcomer:
            stream = newcomer.open_stream(target)
            assert echo(stream, b"after the flood") == b"after the flood"
            stream.close()
    server.signal(signal.SIGTERM)
    assert server.exit_code() == 0
    assert "Traceback" not in server.log
    print(f"flood ({max_connections or 'default'}): {used:.1%} CPU, {len(times)} warnings in "
          f"{spread:.1f} s")


def test_the_default_limit_leaves_descriptors_for_the_sessions_targets():
    # (200 - 64) / 2: every connection held can still dial its target
    assert (200 - RESERVED_FDS) // 2 == 68


# ---- --max-connections and --local-auth on the command line -------------------------------------


def tls_handshake_completes(port: int, timeout: float) -> bool:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        try:
            context.wrap_socket(raw).close()
        except (TimeoutError, OSError):
            return False
    return True


def test_max_connections_holds_new_ones_in_the_backlog(children):
    server = children("server", "-l", "127.0.0.1:0", "-p", PASSWORD, "--max-connections", "2")
    port = server.port()
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        server.wait_for(r"WARNING .*2 connections, the limit: new ones wait in the listen "
                        r"backlog until one ends \(--max-connections\)")
        assert not tls_handshake_completes(port, timeout=0.5)  # waits in the backlog
        silent.pop().close()
        assert tls_handshake_completes(port, timeout=10)
    finally:
        for sock in silent:
            sock.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def http_get(proxy: int, target: tuple[str, int], authorization: str | None) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy), timeout=10) as conn:
        header = f"Proxy-Authorization: {authorization}\r\n" if authorization else ""
        conn.sendall(f"GET http://{target[0]}:{target[1]}/x HTTP/1.1\r\nHost: h\r\n{header}"
                     "\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def socks_echo(proxy: int, target: tuple[str, int], **credentials) -> bytes:
    sock = socks.socksocket()
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", proxy, **credentials)
    sock.settimeout(10)
    with sock:
        sock.connect(target)
        sock.sendall(b"ping")
        return sock.recv(4)


@pytest.mark.parametrize("how", ["--local-auth", "mihomo authentication"])
def test_local_auth_from_the_command_line_or_a_config(how, children, echo_server, http_server,
                                                      tmp_path):
    server = children("server", "-l", "127.0.0.1:0", "-p", PASSWORD)
    port = server.port()
    if how == "--local-auth":
        client = children("client", "-l", "127.0.0.1:0", "-s", f"127.0.0.1:{port}", "-p",
                          PASSWORD, "--insecure", "--local-auth", "alice:s3cret")
    else:
        config = tmp_path / "mihomo.yaml"
        config.write_text("mixed-port: 0\nauthentication: [\"alice:s3cret\"]\nproxies:\n"
                          f"  - {{type: anytls, name: n, server: 127.0.0.1, port: {port}, "
                          f"password: {PASSWORD!r}, skip-cert-verify: true}}\n")
        client = children("client", "-c", str(config))
    client.wait_for(r"proxy listening on .*--local-auth: 1 user\)")
    proxy = client.port()
    assert socks_echo(proxy, echo_server.address, username="alice", password="s3cret") == b"ping"
    with pytest.raises(socks.ProxyError, match="All offered SOCKS5 authentication methods were "
                                               "rejected"):
        socks_echo(proxy, echo_server.address)
    with pytest.raises(socks.ProxyError, match="SOCKS5 authentication failed"):
        socks_echo(proxy, echo_server.address, username="alice", password="wrong")
    assert http_get(proxy, http_server.address, basic("alice", "s3cret")).startswith(
        b"HTTP/1.0 200")
    for authorization in (None, basic("alice", "wrong")):
        answer = http_get(proxy, http_server.address, authorization)
        assert answer.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
    assert "Traceback" not in client.log


def test_an_open_local_port_without_local_auth_is_warned_about(children):
    client = children("client", "-l", "0.0.0.0:0", "-s", "127.0.0.1:1", "-p", PASSWORD)
    client.wait_for(r"WARNING the SOCKS5/HTTP port 0\.0\.0\.0:\d+ is open to other machines "
                    r"without --local-auth")


# ---- the sample systemd unit --------------------------------------------------------------------

UNIT = ROOT / "contrib" / "anytls-ref-server.service"


def read_unit() -> dict[str, dict[str, list[str]]]:
    """The unit as systemd reads it: sections of keys, a key given twice keeps both values."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None,
                                          comment_prefixes=("#", ";"), delimiters=("=",),
                                          dict_type=_MultiDict, empty_lines_in_values=False)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(UNIT, encoding="utf-8")
    return {section: {key: value.split("\n") for key, value in parser[section].items()}
            for section in parser.sections()}


class _MultiDict(dict):
    """configparser's storage: a repeated key appends its value (systemd's LoadCredential=)."""

    def __setitem__(self, key, value):
        if key in self and isinstance(value, list) and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def test_the_sample_systemd_unit_is_hardened():
    unit = read_unit()
    service = unit["Service"]

    def one(key: str) -> str:
        assert len(service[key]) == 1, key
        return service[key][0]

    assert {key: one(key) for key in (
        "DynamicUser", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
        "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
        "ProtectControlGroups", "RestrictNamespaces", "RestrictSUIDSGID", "LockPersonality",
        "MemoryDenyWriteExecute", "CapabilityBoundingSet", "KillSignal")} == {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "KillSignal": "SIGTERM"}
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in service["SystemCallFilter"]
    # secrets come as credentials, never on the command line or in the environment
    assert sorted(v.split(":")[0] for v in service["LoadCredential"]) == [
        "cert.pem", "key.pem", "password"]
    assert "Environment" not in service
    # the command line is one this version accepts, and systemd waits longer than its grace
    program, *argv = one("ExecStart").replace("${CREDENTIALS_DIRECTORY}", "/run/creds").split()
    assert program.endswith("/anytls-ref")
    args = build_parser().parse_args(argv)
    assert (args.command, args.password_file, args.cert, args.key) == (
        "server", "/run/creds/password", "/run/creds/cert.pem", "/run/creds/key.pem")
    assert float(one("TimeoutStopSec")) > args.grace
    assert one("Restart") == "on-failure"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
