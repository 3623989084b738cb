"""The checks of ``anytls-ref probe client`` (client_probe.py runs them, in the order they are
registered: ``CLIENT_CHECKS``). Each judges what the probe server saw of the client's sessions.

What a client writes is seen as TLS records: RawServer reads one record per ``recv`` (stdlib
``ssl``: each SSLSocket.recv returns the plaintext of at most one record), and shaping.py reads
the records back into writes (``SessionView.writes``) and checks them against the scheme's lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..auth import AUTH_OVERHEAD, check_auth
from ..frame import Command, command_name
from ..padding import DEFAULT, PaddingScheme
from ..settings import ClientSettings
from .client_script import TARGET_ALERT, TARGET_ECHO, TARGET_HOST, TARGET_REFUSED, ProbeServer
from .report import FAIL, INFO, PASS, Check, registrar
from .shaping import RecordView, check_write, describe_write, group_writes, view_records

if TYPE_CHECKING:
    from .client_probe import ClientProbe


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
