"""``anytls-ref probe client -l HOST:PORT``: the probe server (client_script.py), the traffic
through the client under test, and the verdicts of the checks (client_checks.py).

Traffic, one connection after the other (``drive`` makes it through the client's SOCKS5 port;
without ``--socks`` the user makes it, e.g. with curl, following ``instructions``):

    A  echo    a new session: authentication, Settings, packet 1, then 8 data writes
               (packets 2..9) each sent after the previous one came back
    B  echo    must reuse that session, with the next stream id
    C  refuse  the client must close the stream (the application sees the connection fail)
    D  alert   the client must close the session
    E  echo    a new session, which must use the padding scheme sent on the first one
"""

from __future__ import annotations

import socket
import time

from ..net.socks_client import Socks5Error, socks5_connect
from ..net.sockutil import recv_exactly
from ..padding import parse_scheme
from .client_checks import CLIENT_CHECKS, session_view
from .client_script import (
    PROBE_SCHEME,
    TARGET_ALERT,
    TARGET_ECHO,
    TARGET_HOST,
    TARGET_REFUSED,
    ProbeServer,
)
from .report import CheckResult

#: Data writes on the first stream of each session: packets 2..9 (sizes chosen so the default
#: scheme splits some, tops up others, and stop=8 is passed).
WRITES = (1200, 300, 40, 900, 10, 2500, 64, 100)
#: How long an application-side step may take (a SOCKS reply, an echo, a close).
STEP_TIMEOUT = 5.0
#: How long ``drive`` retries the first connection while none reaches the probe server: a
#: client may listen before it can forward (mihomo opens its ports before its tunnel runs).
CLIENT_READY_TIMEOUT = 10.0
#: After a stream ends, how long the probe waits before the next connection. The protocol gives
#: a client no way to say its session is idle again; this is the time it gets to put it back
#: in its pool (the probe first waits for the client's cmdFIN).
IDLE_SETTLE = 0.2


class ProbeStepFailed(Exception):
    """A step of the traffic could not run as planned (kept in ``ClientProbe.notes``)."""


class ClientProbe:
    """The probe server, the traffic (``drive`` or a person), and the verdicts (``evaluate``)."""

    def __init__(self, listen: tuple[str, int] = ("127.0.0.1", 0), password: str = "probe",
                 scheme: bytes = PROBE_SCHEME) -> None:
        self.password = password
        self.scheme = parse_scheme(scheme)
        self.server = ProbeServer(password, scheme, listen)
        self.address = self.server.address
        #: what the application saw, per step ("refuse", "alert"), when the probe drove it
        self.app: dict[str, str] = {}
        self.app_failed: dict[str, bool] = {}
        self.driven = False
        #: problems of the traffic itself (a step that could not run), for the details
        self.notes: list[str] = []

    def __enter__(self) -> ClientProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.server.close()

    # ---- traffic ----

    def instructions(self, socks_hint: str = "CLIENT_SOCKS5") -> str:
        host, port = self.address
        curl = f"curl -x socks5h://{socks_hint} http://{TARGET_HOST}"
        return "\n".join([
            f"probe server listening on {host}:{port} (TLS, a fresh self-signed certificate: "
            "turn certificate verification off)",
            f"  password {self.password!r}, e.g.  anytls://{self.password}@{host}:{port}/"
            "?insecure=1",
            "Through the client, make these five requests one after the other, each after the "
            "previous one ended:",
            f"  1. {curl}:{TARGET_ECHO}/first    a new session: authentication, Settings, "
            "packets 1 and 2",
            f"  2. {curl}:{TARGET_ECHO}/second   must reuse that session, next stream id",
            f"  3. {curl}:{TARGET_REFUSED}/         cmdSYNACK with an error: must fail",
            f"  4. {curl}:{TARGET_ALERT}/         cmdAlert: the client must close the session",
            f"  5. {curl}:{TARGET_ECHO}/third    a new session, padded with the scheme sent "
            "on the first",
            f"(Nothing is dialled: {TARGET_HOST}:{TARGET_ECHO}..{TARGET_ALERT} only name what "
            "the probe server does.)",
        ])

    def wait_manual(self, timeout: float) -> None:
        """Wait until the five requests have been made (or ``timeout``; Ctrl-C ends it too)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                streams = self.server.streams()
                if len(streams) >= 5 and any(
                        e.conn == streams[4].conn
                        for e in self.server.find("http-answered", streams[4].sid)):
                    return
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass

    def drive(self, socks: tuple[str, int]) -> None:
        """Make the traffic A..E through the client's SOCKS5 port at ``socks``."""
        self.driven = True
        deadline = time.monotonic() + CLIENT_READY_TIMEOUT
        while True:
            notes = len(self.notes)
            self._step("A", lambda: self._echo_connection(socks, WRITES))
            if self.server.accepted or time.monotonic() >= deadline:
                break
            # A never reached the probe server, so it left no trace: the client is not ready
            del self.notes[notes:]
            time.sleep(0.1)
        self._step("B", lambda: self._echo_connection(socks, (6,)))
        self._step("C", lambda: self._failing_connection(socks, "refuse", TARGET_REFUSED))
        time.sleep(IDLE_SETTLE)
        self._step("D", lambda: self._failing_connection(socks, "alert", TARGET_ALERT))
        self._wait_alerted_session_closed()
        self._step("E", lambda: self._echo_connection(socks, WRITES))

    def _step(self, name: str, action) -> None:
        try:
            action()
        except (OSError, Socks5Error, ProbeStepFailed) as exc:
            self.notes.append(f"connection {name}: {exc}")

    def _echo_connection(self, socks: tuple[str, int], sizes: tuple[int, ...]) -> None:
        before = len(self.server.streams())
        with socks5_connect(socks, (TARGET_HOST, TARGET_ECHO), timeout=STEP_TIMEOUT) as sock:
            for n, size in enumerate(sizes):
                payload = bytes([0x41 + n]) * size
                sock.sendall(payload)
                got = _recv_exactly(sock, size)
                if got != payload:
                    raise ProbeStepFailed(f"write {n + 1}: the echo differs")
        streams = self.server.streams()
        if len(streams) <= before:
            raise ProbeStepFailed("the probe server saw no stream for it")
        mine = streams[before]
        # wait for the client's cmdFIN, then give it IDLE_SETTLE to pool the session again
        deadline = time.monotonic() + STEP_TIMEOUT
        while not any(e.conn == mine.conn for e in self.server.find("FIN", mine.sid)
                      if e.time >= mine.time):
            if time.monotonic() >= deadline:
                self.notes.append(f"no cmdFIN for stream {mine.sid} within {STEP_TIMEOUT} s")
                break
            time.sleep(0.01)
        time.sleep(IDLE_SETTLE)

    def _failing_connection(self, socks: tuple[str, int], step: str, port: int) -> None:
        """A connection that must fail: a SOCKS5 failure reply, or a success reply and then
        the end of the connection."""
        start = time.monotonic()
        try:
            sock = socks5_connect(socks, (TARGET_HOST, port), timeout=STEP_TIMEOUT)
        except Socks5Error as exc:
            self._app_result(step, True, f"{exc} after {(time.monotonic() - start) * 1000:.0f} ms")
            return
        except OSError as exc:
            self._app_result(step, True, f"SOCKS5 handshake ended: {exc}")
            return
        with sock:  # a success reply (a client that does not wait for cmdSYNACK)
            try:
                sock.sendall(b"hello")
                data = sock.recv(1024)
            except socket.timeout:
                self._app_result(step, False, f"success reply, then still open after "
                                              f"{STEP_TIMEOUT} s")
                return
            except OSError as exc:
                how = type(exc).__name__
            else:
                if data:
                    self._app_result(step, False, f"success reply, then {len(data)} bytes")
                    return
                how = "closed"
        elapsed = (time.monotonic() - start) * 1000
        self._app_result(step, True, f"success reply, then {how} after {elapsed:.0f} ms")

    def _app_result(self, step: str, failed: bool, text: str) -> None:
        self.app[step] = text
        self.app_failed[step] = failed

    def _wait_alerted_session_closed(self) -> None:
        """Give the client STEP_TIMEOUT to close the session it got cmdAlert on; then close it."""
        alerts = self.server.find("alert-sent")
        if not alerts:
            return
        conn = alerts[-1].conn
        deadline = time.monotonic() + STEP_TIMEOUT
        while not any(e.conn == conn for e in self.server.find("closed")):
            if time.monotonic() >= deadline:
                self.server.drop(conn)
                return
            time.sleep(0.01)

    # ---- verdicts ----

    def evaluate(self) -> list[CheckResult]:
        if not self.driven:  # close whatever a person left open, so "closed" events are final
            for conn in self.server.connection_numbers():
                if not any(e.conn == conn for e in self.server.find("closed")):
                    self.server.drop(conn)
        sessions = self.server.connection_numbers()
        views = {conn: session_view(self.server, conn) for conn in sessions}
        results = []
        for c in CLIENT_CHECKS:
            start = time.monotonic()
            status, detail = c.run(self, sessions, views)
            results.append(CheckResult(c.name, c.section, c.requirement, status, detail,
                                       round(time.monotonic() - start, 2)))
        return results


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    return recv_exactly(sock, n, error=ProbeStepFailed, what=" of the echo")
