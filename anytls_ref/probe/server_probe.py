"""``anytls-ref probe server HOST:PORT -p PW``: where does an anytls server depart from the spec?

Each check opens its own TLS connection(s) with a scripted client (rawpeer.ScriptedClient or a
bare RawClient), sends exactly what the check is about, and judges what comes back. Streams go
to the probe's own targets: an echo server (a stream that must work) and a port nobody listens
on (a dial that must fail), both on the target host, 127.0.0.1 unless ``--target-host`` says
otherwise. With 127.0.0.1 the stream checks need the server to run on the machine the probe runs
on; for a remote server, give an address of the probe's machine that the server can reach
(``--target-host 192.0.2.7``), else they FAIL with "no SYNACK"/"refused".

The checks, in the order they run (``CHECKS``):

    settings-v1          Settings v=1: no cmdServerSettings, no cmdSYNACK; the stream works
    settings-v2          Settings v=2: cmdServerSettings v=2
    settings-v3          Settings v=3: cmdServerSettings v=2 or 3
    settings-order       md5 mismatch: cmdUpdatePaddingScheme comes before cmdServerSettings
    padding-md5          md5 mismatch: a usable scheme; with its md5, no update
    syn-before-settings  SYN first: cmdAlert, then the session is closed; nothing dialled
    heartbeat            cmdHeartRequest sid=1: cmdHeartResponse sid=1
    waste                cmdWaste (0 B, 1000 B, between SYN and PSH) changes nothing
    synack-ok            a stream to the echo target: an empty cmdSYNACK, then the echo
    synack-refused       a stream to a closed port: cmdSYNACK carrying the error
    sid-2-after-fin      FIN 1, then SYN 2 on the same session
    sid-2-before-fin     SYN 2 while stream 1 is open
    sid-1-again          FIN 1, then SYN 1 again
    frame-64k            one cmdPSH of 65535 bytes is echoed whole
    wrong-password       what the server does (close, fallback, silence): INFO
    garbage-isolation    garbage on one session does not disturb another
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..auth import encode_auth, password_hash
from ..errors import PaddingSchemeError
from ..frame import Command, Frame, command_name
from ..padding import DEFAULT, parse_scheme
from ..settings import ClientSettings, decode_alert
from ..socksaddr import SocksAddr, encode_socksaddr
from .rawpeer import (
    DEFAULT_TIMEOUT,
    ExpectationFailed,
    RawClient,
    ScriptedClient,
    describe,
    frame,
    insecure_client_context,
)
from .report import FAIL, INFO, PASS, CheckResult, section_of
from .targets import EchoServer, refused_port

#: The md5 the probe sends when it wants the server to disagree (no scheme has it).
WRONG_MD5 = "0" * 32
#: Where the probe's targets listen unless told (--target-host): the server must run here too.
DEFAULT_TARGET_HOST = "127.0.0.1"


#: How long check_password waits for the server's first answer before letting the checks run
#: (a version-1 server whose target is far may say nothing for a while).
AUTH_WAIT = 2.0


class PasswordRefused(Exception):
    """The server ended the connection (or a fallback web server answered) right after the
    probe's password: authentication failed, and no check can pass."""


class Rejected(ExpectationFailed):
    """The server answered with cmdAlert (``text``)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"cmdAlert {text!r}")
        self.text = text


Verdict = tuple[str, str]  # (PASS/FAIL/INFO, detail)


@dataclass(frozen=True)
class ServerCheck:
    name: str
    requirement: str | None
    section: str
    run: Callable[[ServerProbe], Verdict]


CHECKS: list[ServerCheck] = []


def check(name: str, requirement: str | None = None, section: str | None = None):
    """Register a check; it returns (status, detail) or raises ExpectationFailed (→ FAIL)."""
    def register(func: Callable[[ServerProbe], Verdict]) -> Callable[[ServerProbe], Verdict]:
        CHECKS.append(ServerCheck(name, requirement, section_of(requirement, section), func))
        return func
    return register


class ServerProbe:
    """The probe's side: how to reach the server, and the local targets its streams use."""

    def __init__(self, address: tuple[str, int], password: str, *, insecure: bool = False,
                 sni: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 target_host: str = DEFAULT_TARGET_HOST) -> None:
        self.address = address
        self.password = password
        self.timeout = timeout
        if insecure:
            self._context = insecure_client_context()
            self._hostname = sni
        else:
            self._context = ssl.create_default_context()
            self._hostname = sni or address[0]
        #: where the targets listen, and the address the server under test is asked to dial
        self.target_host = target_host
        self.echo: EchoServer | None = None
        self.refused = 0  #: the refused port (set by start())

    def start(self) -> None:
        """Start the targets on ``target_host``; OSError if it is no address of this machine.
        ``with ServerProbe(...)`` calls it; the command line calls it before, to turn that
        OSError into a usage error."""
        if self.echo is None:
            self.refused = refused_port(self.target_host)
            self.echo = EchoServer(self.target_host)

    def __enter__(self) -> ServerProbe:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.echo is not None:
            self.echo.close()

    @property
    def target(self) -> tuple[str, int]:
        """The echo target's address (the probe must be entered: ``with ServerProbe(...)``)."""
        if self.echo is None:
            raise RuntimeError("use ServerProbe as a context manager")
        return self.target_host, self.echo.address[1]

    # ---- connections ----

    def raw(self) -> RawClient:
        return RawClient(self.address, context=self._context, server_hostname=self._hostname)

    def scripted(self, version: int, padding_md5: str = DEFAULT.md5) -> ScriptedClient:
        return ScriptedClient(self.address, self.password, version, padding_md5=padding_md5,
                              context=self._context, server_hostname=self._hostname)

    def session(self, version: int = 2) -> ScriptedClient:
        """An authenticated session whose Settings the server answered (version 2 rules)."""
        peer = self.scripted(version)
        try:
            if peer.start(self.timeout) is None:
                raise ExpectationFailed("no cmdServerSettings: not a version-2 session")
        except BaseException:
            peer.close()
            raise
        return peer

    # ---- running ----

    def preflight(self) -> None:
        """Raise OSError (or ssl.SSLError) if no TLS connection can be made at all."""
        self.raw().close()

    def check_password(self) -> None:
        """Raise PasswordRefused if the server closes, or answers like a web server, right
        after the probe's password and a stream to the echo target (every check would FAIL
        for that one reason). Frames, or silence for AUTH_WAIT, let the checks run."""
        with self.raw() as peer:
            peer.tls.settimeout(AUTH_WAIT)
            try:
                peer.send_auth(self.password, 0)
                peer.send_settings(2, client="probe")
                peer.open_stream(1, *self.target)
                peer.send_data(1, b"probe")
                answer = peer.tls.recv(64)
            except TimeoutError:
                return
            except (ConnectionError, ssl.SSLError):  # a write into the closed connection
                answer = b""
        if not answer:
            raise PasswordRefused("closed the connection right after the password")
        if answer.startswith(b"HTTP/") or answer.lstrip().startswith(b"<"):
            first_line = answer.split(b"\n", 1)[0].strip()[:40]
            raise PasswordRefused(f"answered like a web server ({first_line!r}) right after "
                                  "the password")

    def run(self, only: set[str] | None = None) -> list[CheckResult]:
        results = []
        for c in CHECKS:
            if only and c.name not in only:
                continue
            start = time.monotonic()
            try:
                status, detail = c.run(self)
            except (ExpectationFailed, TimeoutError) as exc:
                status, detail = FAIL, str(exc)
            except (OSError, ssl.SSLError) as exc:
                status, detail = FAIL, f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(c.name, c.section, c.requirement, status, detail,
                                       round(time.monotonic() - start, 2)))
        return results


def run_server_probe(address: tuple[str, int], password: str, *, insecure: bool = False,
                     sni: str | None = None, only: set[str] | None = None,
                     timeout: float = DEFAULT_TIMEOUT,
                     target_host: str = DEFAULT_TARGET_HOST) -> list[CheckResult]:
    """Every check (or those named in ``only``) against the server at ``address``;
    ``timeout`` bounds each expected answer; the targets listen on ``target_host``."""
    with ServerProbe(address, password, insecure=insecure, sni=sni, timeout=timeout,
                     target_host=target_host) as probe:
        return probe.run(only)


# ---- helpers the checks share -----------------------------------------------------------------


def read_stream(peer: RawClient, sid: int, n: int, timeout: float) -> bytes:
    """``n`` bytes of stream ``sid`` in cmdPSH frames of any size. cmdWaste, a late
    cmdUpdatePaddingScheme and cmdFIN of another stream (some servers echo our FIN) are
    skipped; cmdAlert raises Rejected; anything else fails."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < n:
        try:
            f = peer.read_frame(max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            raise ExpectationFailed(f"sid {sid}: {len(data)} of {n} bytes within {timeout} s")
        if f is None:
            raise ExpectationFailed(f"sid {sid}: connection closed after {len(data)} of {n} bytes")
        if f.command == Command.PSH and f.stream_id == sid:
            data += f.data
        elif f.command == Command.ALERT:
            raise Rejected(decode_alert(f.data))
        elif f.command == Command.FIN and f.stream_id != sid:
            continue
        elif f.command not in (Command.WASTE, Command.UPDATE_PADDING_SCHEME):
            raise ExpectationFailed(f"sid {sid}: expected its data, got {describe(f)}")
    return bytes(data)


def echo(peer: RawClient, sid: int, payload: bytes, timeout: float = DEFAULT_TIMEOUT) -> None:
    peer.send_data(sid, payload)
    if read_stream(peer, sid, len(payload), timeout) != payload:
        raise ExpectationFailed(f"sid {sid}: the echo differs from what was sent")


def open_stream(peer: ScriptedClient, sid: int, target: tuple[str, int],
                timeout: float = DEFAULT_TIMEOUT, *, reopened: bool = False) -> None:
    """SYN + address; on a version-2 session wait for an empty cmdSYNACK (Alert → Rejected).

    A cmdFIN of another stream is skipped (older sing-anytls and ssrlive echo our FIN); so is
    one of this stream when it is ``reopened`` (its id was used and FINed before).
    """
    peer.open_stream(sid, *target)
    if not peer.features.synack:
        return
    deadline = time.monotonic() + timeout
    while True:
        frames, how = peer.read_until(
            lambda f: f.command in (Command.SYNACK, Command.ALERT, Command.FIN),
            max(deadline - time.monotonic(), 0.0))
        last = frames[-1] if frames else None
        if how != "done" or last is None:
            why = "the connection closed" if how == "closed" else f"nothing within {timeout} s"
            raise ExpectationFailed(f"sid {sid}: no cmdSYNACK ({why})")
        if last.command == Command.ALERT:
            raise Rejected(decode_alert(last.data))
        if last.command == Command.FIN and (last.stream_id != sid or reopened):
            reopened = reopened and last.stream_id != sid  # skip one echo of our FIN
            continue
        if last.command == Command.FIN or last.stream_id != sid or last.data:
            raise ExpectationFailed(f"sid {sid}: expected an empty SYNACK, got {describe(last)}")
        return


def _settings_answer(probe: ServerProbe, version: int) -> Verdict:
    with probe.scripted(version) as peer:
        answered = peer.start(probe.timeout)
    if answered is None:
        return FAIL, f"no cmdServerSettings within {probe.timeout} s after Settings v={version}"
    before = " (after cmdUpdatePaddingScheme)" if peer.padding_update is not None else ""
    if answered < 2:
        return FAIL, f"cmdServerSettings v={answered}{before}: version 2 features stay off"
    if answered > version:
        return INFO, f"cmdServerSettings v={answered}{before}, above the client's v={version}"
    return PASS, f"cmdServerSettings v={answered}{before}"


# ---- the checks -------------------------------------------------------------------------------


@check("settings-v1", "V2-BOTH-SIDES")
def settings_v1(probe: ServerProbe) -> Verdict:
    with probe.scripted(1) as peer:  # fails on any cmdServerSettings or cmdSYNACK
        peer.start()
        peer.open(1, *probe.target)
        try:
            echo(peer, 1, b"version 1 client", probe.timeout)
        except Rejected as exc:
            return INFO, f"rejects version-1 clients with {exc} (allowed: COMPAT-MIN-REJECT)"
    return PASS, "no cmdServerSettings, no cmdSYNACK; the stream echoed"


@check("settings-v2", "SESS-SERVER-SETTINGS")
def settings_v2(probe: ServerProbe) -> Verdict:
    return _settings_answer(probe, 2)


@check("settings-v3", "SESS-SERVER-SETTINGS")
def settings_v3(probe: ServerProbe) -> Verdict:
    return _settings_answer(probe, 3)


def _answer_to_settings(probe: ServerProbe, padding_md5: str) -> list[Frame]:
    """Every frame the server sends in answer to cmdSettings v=2 with ``padding_md5``.

    A cmdHeartRequest goes right behind the Settings: its cmdHeartResponse marks the end of
    what the Settings caused (a server handles frames in order), so no time window is needed.
    A server that does not answer heartbeats costs the probe's timeout instead.
    """
    settings = ClientSettings(2, "anytls-ref-probe", padding_md5).encode()
    with probe.raw() as peer:
        peer.send_auth(probe.password, 30)
        peer.send_raw(frame(Command.SETTINGS, 0, settings) + frame(Command.HEART_REQUEST, 0))
        frames, _ = peer.read_until(lambda f: f.command == Command.HEART_RESPONSE,
                                    probe.timeout)
    return [f for f in frames if f.command != Command.HEART_RESPONSE]


@check("settings-order", section="Client › Session › cmdUpdatePaddingScheme")
def settings_order(probe: ServerProbe) -> Verdict:
    names = [command_name(f.command) for f in _answer_to_settings(probe, WRONG_MD5)]
    wanted = ["UPDATE_PADDING_SCHEME", "SERVER_SETTINGS"]
    if [n for n in names if n in wanted] == wanted:
        return PASS, "cmdUpdatePaddingScheme, then cmdServerSettings (as Go servers answer)"
    said = " then ".join(names) or "nothing"
    return FAIL, (f"answered {said}; Go servers (and clients that take cmdServerSettings as "
                  "the end of the answer) put cmdUpdatePaddingScheme first")


@check("padding-md5", "PAD-UPDATE-SEND")
def padding_md5(probe: ServerProbe) -> Verdict:
    updates = [f for f in _answer_to_settings(probe, WRONG_MD5)
               if f.command == Command.UPDATE_PADDING_SCHEME]
    if not updates:
        return FAIL, "padding-md5 of 32 zeros: no cmdUpdatePaddingScheme"
    try:
        scheme = parse_scheme(updates[0].data)
    except PaddingSchemeError as exc:
        return FAIL, f"cmdUpdatePaddingScheme carries an unusable scheme: {exc}"
    if any(f.command == Command.UPDATE_PADDING_SCHEME
           for f in _answer_to_settings(probe, scheme.md5)):
        return FAIL, f"sent cmdUpdatePaddingScheme again although the md5 ({scheme.md5}) matched"
    warned = f"; {len(scheme.warnings)} malformed entries" if scheme.warnings else ""
    kind = "the default scheme" if scheme.is_default else f"a custom scheme (stop={scheme.stop})"
    return PASS, f"sent {kind}, md5 {scheme.md5[:8]}…{warned}; no update once the md5 matched"


@check("syn-before-settings", "SESS-SYN-BEFORE-SETTINGS")
def syn_before_settings(probe: ServerProbe) -> Verdict:
    dialled_before = probe.echo.connections

    def dialled() -> str:
        return "; the target WAS dialled" if probe.echo.connections != dialled_before else ""

    with probe.raw() as peer:
        peer.send_auth(probe.password, 30)
        peer.open_stream(1, *probe.target)
        frames, how = peer.read_until(lambda f: f.command == Command.ALERT, probe.timeout)
        if how != "done":
            got = ", ".join(describe(f) for f in frames) or "nothing"
            state = "closed" if how == "closed" else f"still open after {probe.timeout} s"
            return FAIL, f"no cmdAlert ({state}); got {got}{dialled()}"
        alert = decode_alert(frames[-1].data)
        if not peer.closed_within(probe.timeout):
            return FAIL, f"cmdAlert {alert!r}, but the session stayed open{dialled()}"
    if dialled():
        return FAIL, f"cmdAlert {alert!r}, but the stream's target was dialled"
    return PASS, f"cmdAlert {alert!r}, then closed; nothing dialled"


@check("heartbeat", "SESS-HEART-RESPOND")
def heartbeat(probe: ServerProbe) -> Verdict:
    # sid 1, not 0: an answer on the request's sid is then told from a fixed sid 0 (and sid 1
    # is one even a one-stream server such as ssrlive's accepts)
    with probe.session() as peer:
        peer.send_frame(Command.HEART_REQUEST, 1)
        frames, how = peer.read_until(lambda f: f.command == Command.HEART_RESPONSE,
                                      probe.timeout)
    if how != "done":
        got = ", ".join(describe(f) for f in frames) or "nothing"
        return FAIL, f"no cmdHeartResponse to cmdHeartRequest sid=1 ({how}); got {got}"
    if frames[-1].stream_id != 1:
        return FAIL, f"cmdHeartResponse on sid {frames[-1].stream_id}, not the request's sid 1"
    return PASS, "cmdHeartResponse sid=1"


@check("waste", "SESS-WASTE-DISCARD")
def waste(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        peer.send_raw(frame(Command.WASTE, 0) + frame(Command.WASTE, 0, bytes(1000)))
        # SYN, Waste, PSH(address) in one write: Waste between the frames of a stream
        addr = encode_socksaddr(SocksAddr(*probe.target))
        peer.send_raw(frame(Command.SYN, 1) + frame(Command.WASTE, 1, bytes(77))
                      + frame(Command.PSH, 1, addr))
        if peer.features.synack:
            peer.expect(Command.SYNACK, sid=1, timeout=probe.timeout)
        peer.send_raw(frame(Command.PSH, 1, b"after ") + frame(Command.WASTE, 0, bytes(300))
                      + frame(Command.PSH, 1, b"waste"))
        if read_stream(peer, 1, 11, probe.timeout) != b"after waste":
            return FAIL, "the stream's data changed around cmdWaste frames"
    return PASS, "Waste of 0, 1000, 77 and 300 bytes dropped; the stream echoed"


@check("synack-ok", "SESS-SYNACK-AFTER-DIAL")
def synack_ok(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        open_stream(peer, 1, probe.target)
        echo(peer, 1, b"synack ok", probe.timeout)
    return PASS, "empty cmdSYNACK sid=1, then the stream echoed"


@check("synack-refused", "SESS-SYNACK-AFTER-DIAL")
def synack_refused(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        peer.open_stream(1, probe.target_host, probe.refused)
        frames, how = peer.read_until(
            lambda f: (f.command == Command.FIN and f.stream_id == 1)
            or (f.command == Command.SYNACK and bool(f.data)) or f.command == Command.ALERT,
            probe.timeout + 2)
    synacks = [f for f in frames if f.command == Command.SYNACK and f.stream_id == 1]
    fin = any(f.command == Command.FIN and f.stream_id == 1 for f in frames)
    if synacks and synacks[-1].data:
        return PASS, f"cmdSYNACK error {decode_alert(synacks[-1].data)!r}"
    if synacks and fin:
        return INFO, ("an empty cmdSYNACK before the dial, then cmdFIN "
                      "(allowed: SESS-SYNACK-EARLY; the client learns the error only as FIN)")
    if fin:
        return FAIL, "cmdFIN without any cmdSYNACK for a version-2 client"
    got = ", ".join(describe(f) for f in frames) or "nothing"
    return FAIL, f"no cmdSYNACK error for a refused dial ({how}); got {got}"


@check("sid-2-after-fin", "SESS-SYN-SID-INCREASING")
def sid_2_after_fin(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        open_stream(peer, 1, probe.target)
        echo(peer, 1, b"first", probe.timeout)
        peer.fin(1)
        try:
            open_stream(peer, 2, probe.target)
            echo(peer, 2, b"second", probe.timeout)
        except Rejected as exc:
            return FAIL, f"stream 2 after FIN 1 got {exc}: Go clients reuse sessions this way"
    return PASS, "stream 2 after FIN 1 on the same session: SYNACK and echo"


@check("sid-2-before-fin", section="Client › Session")
def sid_2_before_fin(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        open_stream(peer, 1, probe.target)
        echo(peer, 1, b"first", probe.timeout)
        try:
            open_stream(peer, 2, probe.target)
            echo(peer, 2, b"second", probe.timeout)
            echo(peer, 1, b"first again", probe.timeout)
        except Rejected as exc:
            return INFO, (f"SYN 2 while stream 1 is open got {exc}: one stream per session, as "
                          "'Multiplexing removed' says; sing-anytls clients can send SYN 2 "
                          "before FIN 1")
    return PASS, "streams 1 and 2 open at once, both echo"


@check("sid-1-again", section="Client › Session")
def sid_1_again(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        open_stream(peer, 1, probe.target)
        echo(peer, 1, b"first", probe.timeout)
        peer.fin(1)
        open_stream(peer, 1, probe.target, reopened=True)
        echo(peer, 1, b"again", probe.timeout)
    return PASS, "stream 1 opened again after its FIN: SYNACK and echo"


@check("frame-64k", section="Client › Session")
def frame_64k(probe: ServerProbe) -> Verdict:
    payload = hashlib.sha256(b"probe").digest() * 2048  # 65536 bytes
    payload = payload[:0xFFFF]
    with probe.session() as peer:
        open_stream(peer, 1, probe.target)
        peer.send_raw(frame(Command.PSH, 1, payload))  # one frame: data length 65535
        if read_stream(peer, 1, len(payload), probe.timeout + 2) != payload:
            return FAIL, "the 65535 bytes came back different"
    return PASS, "one cmdPSH of 65535 bytes echoed whole"


@check("wrong-password", "AUTH-SERVER-REJECT")
def wrong_password(probe: ServerProbe) -> Verdict:
    wrong = password_hash(probe.password + " (wrong)")
    # a wrong request, then Settings: a server that (wrongly) accepted it would answer
    hello = encode_auth(wrong, 0) + frame(Command.SETTINGS, 0, b"v=2\nclient=probe")
    start = time.monotonic()
    with probe.raw() as peer:
        peer.send_raw(hello)
        try:
            reply = peer.recv_raw_until_closed(probe.timeout)
        except ExpectationFailed:
            return INFO, f"kept the connection open and silent for {probe.timeout} s"
    elapsed = (time.monotonic() - start) * 1000
    if not reply:
        return INFO, f"closed the connection after {elapsed:.0f} ms, sending nothing"
    if reply[:1] == bytes([Command.SERVER_SETTINGS]) and len(reply) >= 7:
        return FAIL, "answered cmdServerSettings: the wrong password was accepted"
    first_line = reply.split(b"\n", 1)[0][:60]
    return INFO, f"answered {len(reply)} bytes, then closed (a fallback?): {first_line!r}"


@check("garbage-isolation", section="Server › Session")
def garbage_isolation(probe: ServerProbe) -> Verdict:
    with probe.session() as good:
        open_stream(good, 1, probe.target)
        echo(good, 1, b"before", probe.timeout)
        with probe.raw() as bad:
            bad.send_auth(probe.password, 30)
            # an HTTP request and 0xFF bytes: unknown commands with long data, never a stream
            bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\xff" * 4096)
            bad_closed = bad.closed_within(1.0)
        echo(good, 1, b"after the garbage", probe.timeout)
    fate = "closed by the server" if bad_closed else "left open"
    return PASS, f"the garbage session was {fate}; the other session still echoes"

