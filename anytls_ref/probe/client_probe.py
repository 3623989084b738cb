"""``anytls-ref probe client -l HOST:PORT``: a probe server, and the checks of a client using it.

The probe runs a scripted anytls server (``ProbeServer``, a rawserver.RawServer) and the client
under test is pointed at it. The server dials nothing: the port of each stream's target says
what it does with the stream (the host is ignored):

    127.0.0.1:10001  echo   cmdSYNACK, then every byte back (an HTTP GET gets a small page + FIN)
    127.0.0.1:10002  refuse cmdSYNACK carrying an error text, then cmdFIN (as a failed dial)
    127.0.0.1:10003  alert  cmdAlert: the client must close the whole session

Traffic, one connection after the other (``drive`` makes it through the client's SOCKS5 port;
without ``--socks`` the user makes it, e.g. with curl, following ``instructions``):

    A  echo    a new session: authentication, Settings, packet 1, then 8 data writes
               (packets 2..9) each sent after the previous one came back
    B  echo    must reuse that session, with the next stream id
    C  refuse  the client must close the stream (the application sees the connection fail)
    D  alert   the client must close the session
    E  echo    a new session, which must use the padding scheme sent on the first one

What a client writes is seen as TLS records: RawServer reads one record per ``recv`` (stdlib
``ssl``: each SSLSocket.recv returns the plaintext of at most one record), and shaping.py reads
the records back into writes and checks them against the scheme's lines.

The probe server answers ``padding-md5`` mismatches with its own scheme (``PROBE_SCHEME`` unless
``--padding-scheme``) and cmdSettings v ≥ 2 with cmdServerSettings v=min(client's, 3).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from ..auth import AUTH_OVERHEAD, check_auth
from ..frame import Command, command_name, encode_psh
from ..net.socks_client import Socks5Error, socks5_connect
from ..net.sockutil import recv_exactly
from ..padding import DEFAULT, PaddingScheme, parse_scheme
from ..settings import ClientSettings
from ..socksaddr import SocksAddr
from ..version import PROTOCOL_VERSION
from .rawserver import RawConnection, RawServer
from .report import FAIL, INFO, PASS, Check, CheckResult, registrar
from .scripting import frame
from .shaping import RecordView, check_write, describe_write, group_writes, view_records

TARGET_HOST = "127.0.0.1"
TARGET_ECHO = 10001
TARGET_REFUSED = 10002
TARGET_ALERT = 10003
ALERT_TEXT = "anytls-ref probe: closing this session to see the client handle cmdAlert"
REFUSED_TEXT = "dial tcp 127.0.0.1:10002: connect: connection refused (anytls-ref probe)"

#: The scheme the probe server pushes: unlike the default in every line, with narrow ranges.
PROBE_SCHEME = (b"stop=5\n0=45-45\n1=150-250\n2=300-350,c,200-250\n3=9-9,100-150\n4=64-64")
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


@dataclass
class Target:
    """A stream the probe server saw: its session (connection number), id and target port."""

    conn: int
    sid: int
    port: int
    time: float


class ProbeServer(RawServer):
    """RawServer with the probe's script: the target port decides what happens to a stream."""

    def __init__(self, password: str, scheme: bytes = PROBE_SCHEME,
                 listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        # implicit_open: ssrlive's client never sends cmdSYN; opening its bare PSH lets the
        # other checks run (the syn-opens-stream check reports it)
        super().__init__(password, version=PROTOCOL_VERSION, padding_scheme=scheme,
                         listen=listen, implicit_open=True)
        self.targets: list[Target] = []
        self._first_data: set[tuple[int, int]] = set()

    def streams(self) -> list[Target]:
        with self._lock:
            return list(self.targets)

    def on_settings(self, conn: RawConnection, settings: ClientSettings) -> None:
        if self.scheme is not None and settings.padding_md5 != self.scheme.md5:
            self.record(conn.number, "update-sent")
        super().on_settings(conn, settings)

    def on_syn(self, conn: RawConnection, stream_id: int) -> None:
        pass  # answered once the target address is known

    def on_target(self, conn: RawConnection, stream_id: int, target: SocksAddr) -> None:
        with self._lock:
            self.targets.append(Target(conn.number, stream_id, target.port, time.monotonic()))
        if target.port == TARGET_ALERT:
            self.record(conn.number, "alert-sent", stream_id)
            self.alert(conn, ALERT_TEXT)
        elif target.port == TARGET_REFUSED:
            if conn.version >= 2:
                conn.send(frame(Command.SYNACK, stream_id, REFUSED_TEXT.encode()))
                self.record(conn.number, "synack-error-sent", stream_id)
            conn.fin(stream_id)
        elif conn.version >= 2:
            conn.send(frame(Command.SYNACK, stream_id))

    def on_data(self, conn: RawConnection, stream_id: int, data: bytes) -> None:
        key = (conn.number, stream_id)
        first = key not in self._first_data
        self._first_data.add(key)
        if first and data.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST"):
            # someone following the instructions with curl: a small page, then the end
            body = f"anytls-ref probe: session {conn.number}, stream {stream_id}\n".encode()
            head = (f"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    f"{len(body)}\r\nConnection: close\r\n\r\n").encode()
            conn.send(encode_psh(stream_id, head + body))
            conn.fin(stream_id)
            self.record(conn.number, "http-answered", stream_id)
            return
        super().on_data(conn, stream_id, data)


# ---- what one session looked like -------------------------------------------------------------


@dataclass
class SessionView:
    conn: int
    padding0: int  #: padding0 length
    auth_problem: str | None  #: why the authentication was not one record, if it was not
    auth_records: list[int]  #: sizes of the records the authentication request came in
    shared_auth_record: int  #: bytes of frames in the same record as the authentication
    first_frame: str | None  #: command name of the first frame after the authentication
    settings: ClientSettings | None
    writes: list[list[RecordView]] = field(default_factory=list)


def session_view(server: ProbeServer, conn: int) -> SessionView:
    c = server.connections[conn]
    records = server.records(conn)
    auth, rest = records[:c.auth_records], records[c.auth_records:]
    request = check_auth(b"".join(auth), server.password_hash)  # RawServer accepted it
    padding0, shared, problem = request.padding0_length, len(request.rest), None
    if len(auth) > 1:
        problem = (f"the authentication request came in {len(auth)} TLS records "
                   f"({'/'.join(str(len(r)) for r in auth)} B), not one")
    last = auth[-1]
    session_bytes = ([last[len(last) - shared:]] if shared else []) + rest
    frames = [e for e in server.events_of(conn) if _is_frame(e.what)]
    return SessionView(conn, padding0, problem, [len(r) for r in auth], shared,
                       frames[0].what if frames else None, c.settings,
                       group_writes(view_records(session_bytes)))


def _is_frame(what: str) -> bool:
    return what in Command.__members__ or what.startswith("CMD")


def _line(scheme: PaddingScheme, packet: int) -> str:
    entries = scheme.packets.get(packet, ())
    return f"line {packet}: " + (",".join(str(e) for e in entries) or "(none)")


def check_padding0(view: SessionView, scheme: PaddingScheme) -> str | None:
    """None if padding0 is sized per line 0 of ``scheme``."""
    sizes = [e for e in scheme.packets.get(0, ()) if e != "c"]
    if scheme.stop == 0 or not sizes:
        return None if view.padding0 == 0 else f"padding0 {view.padding0}, the scheme has none"
    low, high = sizes[0].low, sizes[0].high
    if not low <= view.padding0 <= high:
        return f"padding0 of {view.padding0} bytes, outside {_line(scheme, 0)}"
    return None


def check_packet1(view: SessionView, scheme: PaddingScheme) -> tuple[str | None, str]:
    """(problem or None, description) for packet 1 of a session."""
    if view.shared_auth_record:
        return (f"packet 1 shares its record with the authentication "
                f"({view.shared_auth_record} bytes of frames after padding0)"), ""
    if not view.writes:
        return "no packet 1 observed", ""
    write = view.writes[0]
    commands = [command_name(c) for r in write for c in r.commands if c != Command.WASTE]
    content = "+".join(dict.fromkeys(commands))
    description = f"records {describe_write(write)} carry {content} ({_line(scheme, 1)})"
    problem = check_write(write, scheme.packets.get(1) if scheme.stop > 1 else None)
    if problem is None and not {"SETTINGS", "SYN", "PSH"} <= set(commands):
        problem = f"carries {content}, not Settings + SYN + PSH(address)"
    if problem is not None:
        problem = f"packet 1 ({describe_write(write)}; {_line(scheme, 1)}): {problem}"
    return problem, description


def check_data_packets(view: SessionView, scheme: PaddingScheme,
                       updated: PaddingScheme | None = None) -> tuple[str | None, str, int | None]:
    """(first problem or None, description, switched) for packets 2.. of a session.

    With ``updated`` (the scheme the server sent this session), a packet that does not fit
    ``scheme`` but fits ``updated`` is taken as the client switching schemes mid-session (Go
    updates a process-wide scheme that running sessions read too); ``switched`` is the first
    such packet, and later packets are judged by ``updated``.
    """
    current, switched, shaped = scheme, None, []
    for n, write in enumerate(view.writes[1:], start=2):
        problem = check_write(write, current.packets.get(n) if n < current.stop else None)
        if problem is not None and updated is not None and current is scheme:
            if check_write(write, updated.packets.get(n) if n < updated.stop else None) is None:
                current, switched, problem = updated, n, None
        if problem is not None:
            return (f"packet {n} ({describe_write(write)}; {_line(current, n)}): {problem}",
                    "", switched)
        if n < current.stop:
            shaped.append(f"{n}: {describe_write(write)}")
    if len(view.writes) < 2:
        return None, "no data packets observed", None
    last = len(view.writes)
    return None, (f"packets 2-{last} fit, records {', '.join(shaped)}; "
                  f"from {current.stop} on unpadded"), switched


# ---- the probe --------------------------------------------------------------------------------


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


# ---- the checks -------------------------------------------------------------------------------
# Each judges what the probe server saw: judge(probe, sessions, views) -> (status, detail), where
# ``sessions`` are the authenticated connection numbers in order and ``views`` their SessionView.
# They run in the order they are registered here.

CLIENT_CHECKS: list[Check] = []
check = registrar(CLIENT_CHECKS)


def _no_session(probe: ClientProbe) -> tuple[str, str]:
    failed = probe.server.find("auth-failed")
    if failed:
        return FAIL, f"authentication failed: {failed[0].data.decode()}"
    notes = f" ({'; '.join(probe.notes)})" if probe.notes else ""
    return FAIL, f"no client authenticated{notes}"


@check("auth-record", "PAD-PADDING0-WITH-AUTH")
def auth_record(probe, sessions, views):
    if not sessions:
        return _no_session(probe)
    view = views[sessions[0]]
    problems = [p for p in (view.auth_problem, check_padding0(view, DEFAULT)) if p]
    if problems:
        return FAIL, f"session 1: {'; '.join(problems)}"
    shared = (f"; {view.shared_auth_record} bytes of frames follow in the same record"
              if view.shared_auth_record else "")
    return PASS, (f"{AUTH_OVERHEAD} + {view.padding0} bytes in one record "
                  f"(the default scheme's {_line(DEFAULT, 0)}){shared}")


@check("settings-first", "SESS-SETTINGS-FIRST")
def settings_first(probe, sessions, views):
    if not sessions:
        return _no_session(probe)
    view = views[sessions[0]]
    if view.first_frame != "SETTINGS" or view.settings is None:
        return FAIL, f"the first frame is {view.first_frame or 'missing'}, not cmdSettings"
    s = view.settings
    said = f"v={s.version} client={s.client!r}"
    if s.padding_md5 != DEFAULT.md5:
        return FAIL, f"{said}: padding-md5 {s.padding_md5} is not the default scheme's " \
                     f"({DEFAULT.md5}); a first session uses the default"
    return PASS, f"{said} padding-md5={DEFAULT.md5[:8]}… (the default scheme's)"


@check("packet-1", "PAD-PACKET1")
def packet_1(probe, sessions, views):
    if not sessions:
        return _no_session(probe)
    problem, description = check_packet1(views[sessions[0]], DEFAULT)
    return (FAIL, problem) if problem else (PASS, description)


@check("syn-opens-stream", section="Client › Session › cmdSYN")
def syn_opens_stream(probe, sessions, views):
    if not sessions:
        return _no_session(probe)
    bare = probe.server.find("PSH-without-SYN")
    if bare:
        return FAIL, (f"{len(bare)} stream(s) began with cmdPSH and no cmdSYN (sid "
                      f"{bare[0].stream_id}): only a server that opens streams implicitly, "
                      "as ssrlive's does, serves them; the probe server did, to go on")
    syns = probe.server.find("SYN")
    if not syns:
        return INFO, "not observed: no stream was opened"
    return PASS, f"all {len(syns)} streams opened with cmdSYN"


@check("packets-2+", section="paddingScheme specific meaning and implementation")
def data_packets(probe, sessions, views):
    if not sessions:
        return _no_session(probe)
    view = views[sessions[0]]
    updated = probe.scheme if probe.server.find("update-sent") else None
    problem, description, switched = check_data_packets(view, DEFAULT, updated)
    if problem:
        return FAIL, problem
    if switched is not None:
        return INFO, (f"from packet {switched} on, session 1 follows the scheme the server sent "
                      "it (as Go's process-wide update does); the spec's MUST is only that new "
                      f"sessions use it, decisions.md D2 keeps the old one. {description}")
    return (INFO, description) if len(view.writes) < 2 else (PASS, description)


@check("reuse", "REUSE-NEWEST-IDLE")
def reuse(probe, sessions, views):
    streams = [t for t in probe.server.streams() if t.port == TARGET_ECHO]
    if len(streams) < 2 or not sessions:
        return INFO, "not observed: fewer than two connections to the echo target"
    first, second = streams[0], streams[1]
    if second.conn != first.conn:
        notes = f" Traffic notes: {'; '.join(probe.notes)}." if probe.notes else ""
        return FAIL, ("the second connection opened a new session although the first was idle "
                      "(the probe server, like Go servers, does not answer the client's cmdFIN "
                      "with one of its own: a client that waits for that never reuses)." + notes)
    return PASS, f"the second connection rode session 1 again (sid {first.sid}, then {second.sid})"


@check("sid-increasing", "SESS-SYN-SID-INCREASING")
def sid_increasing(probe, sessions, views):
    per_session: dict[int, list[int]] = {}
    for event in probe.server.find("SYN"):
        per_session.setdefault(event.conn, []).append(event.stream_id)
    reused = {conn: sids for conn, sids in per_session.items() if len(sids) > 1}
    if not reused:
        return INFO, "not observed: no session carried two streams"
    text = "; ".join(f"session {sessions.index(c) + 1}: {', '.join(map(str, s))}"
                     for c, s in reused.items() if c in sessions)
    bad = [sids for sids in reused.values() if any(b <= a for a, b in zip(sids, sids[1:]))]
    if bad:
        return FAIL, f"stream ids do not increase within a session ({text}); the spec says " \
                     "SHOULD"
    return PASS, text


@check("synack-error", "SESS-SYNACK-ERROR-CLOSE")
def synack_error(probe, sessions, views):
    refused = [t for t in probe.server.streams() if t.port == TARGET_REFUSED]
    if not refused:
        return INFO, f"not observed: no connection to {TARGET_HOST}:{TARGET_REFUSED}"
    if not probe.server.find("synack-error-sent"):
        return INFO, "the client speaks version 1: the failure was told with cmdFIN only"
    if "refuse" not in probe.app:
        return INFO, ("sent cmdSYNACK with an error, then cmdFIN; the request to port "
                      f"{TARGET_REFUSED} must have failed (the probe did not make it)")
    if probe.app_failed["refuse"]:
        return PASS, f"the application saw the connection fail: {probe.app['refuse']}"
    return FAIL, f"the stream stayed usable after the SYNACK error: {probe.app['refuse']}"


@check("alert", "SESS-ALERT-LOG-CLOSE")
def alert(probe, sessions, views):
    alerts = probe.server.find("alert-sent")
    if not alerts:
        return INFO, f"not observed: no connection to {TARGET_HOST}:{TARGET_ALERT}"
    conn, sent = alerts[0].conn, alerts[0].time
    later_syns = [e for e in probe.server.find("SYN") if e.conn == conn and e.time > sent]
    if later_syns:
        return FAIL, f"opened stream {later_syns[0].stream_id} on the session after cmdAlert"
    ends = [e for e in probe.server.events_of(conn) if e.what in ("closed", "dropped")]
    if not ends or ends[0].what == "dropped":
        held = f" for {ends[0].time - sent:.1f} s, until the probe closed it" if ends else ""
        return FAIL, f"kept the session open after cmdAlert{held}"
    app = f"; the application saw: {probe.app['alert']}" if "alert" in probe.app else ""
    return PASS, f"closed the session {(ends[0].time - sent) * 1000:.0f} ms after cmdAlert{app}"


@check("padding-update", "PAD-UPDATE-NEW-SESSIONS")
def padding_update(probe, sessions, views):
    if not sessions:
        return _no_session(probe)
    scheme = probe.scheme
    if not probe.server.find("update-sent"):
        return INFO, "the client already announced the probe's scheme: no update was sent"
    if len(sessions) < 2:
        return INFO, "not observed: the client made no second session"
    view = views[sessions[1]]
    md5 = view.settings.padding_md5 if view.settings else None
    problems = [f"padding-md5 {md5}, not the updated scheme's {scheme.md5}"
                if md5 != scheme.md5 else None, check_padding0(view, scheme)]
    packet1_problem, packet1 = check_packet1(view, scheme)
    packets_problem, packets, _ = check_data_packets(view, scheme)
    problems = [p for p in problems + [packet1_problem, packets_problem, view.auth_problem] if p]
    if problems:
        return FAIL, f"session 2: {'; '.join(problems)}"
    return PASS, (f"session 2: padding0 {view.padding0}, padding-md5 {scheme.md5[:8]}…; "
                  f"packet 1 {packet1}; {packets}")


CLIENT_CHECK_NAMES = [c.name for c in CLIENT_CHECKS]


