"""The checks of ``anytls-ref probe server`` (server_probe.py runs them), in the order they run
(``CHECKS``):

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

Each check(probe) opens its own TLS connection(s) through the ServerProbe it is given, and
returns (PASS/FAIL/INFO, detail) or raises ExpectationFailed (→ FAIL).
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from ..auth import encode_auth, password_hash
from ..errors import PaddingSchemeError
from ..frame import Command, Frame, command_name
from ..net.trace import describe
from ..padding import parse_scheme
from ..settings import ClientSettings, decode_alert
from ..socksaddr import SocksAddr, encode_socksaddr
from .rawclient import RawClient, ScriptedClient
from .report import FAIL, INFO, PASS, Check, registrar
from .scripting import DEFAULT_TIMEOUT, ExpectationFailed, frame

if TYPE_CHECKING:
    from .server_probe import ServerProbe

#: The md5 the probe sends when it wants the server to disagree (no scheme has it).
WRONG_MD5 = "0" * 32


class Rejected(ExpectationFailed):
    """The server answered with cmdAlert (``text``)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"cmdAlert {text!r}")
        self.text = text


Verdict = tuple[str, str]  # (PASS/FAIL/INFO, detail)

CHECKS: list[Check] = []
check = registrar(CHECKS)


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


def open_and_echo(probe: ServerProbe, peer: ScriptedClient, sid: int, payload: bytes, *,
                  reopened: bool = False) -> None:
    """open_stream to the probe's echo target, then one echo on it."""
    open_stream(peer, sid, probe.target, reopened=reopened)
    echo(peer, sid, payload, probe.timeout)


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
        open_and_echo(probe, peer, 1, b"synack ok")
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
        open_and_echo(probe, peer, 1, b"first")
        peer.fin(1)
        try:
            open_and_echo(probe, peer, 2, b"second")
        except Rejected as exc:
            return FAIL, f"stream 2 after FIN 1 got {exc}: Go clients reuse sessions this way"
    return PASS, "stream 2 after FIN 1 on the same session: SYNACK and echo"


@check("sid-2-before-fin", section="Client › Session")
def sid_2_before_fin(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        open_and_echo(probe, peer, 1, b"first")
        try:
            open_and_echo(probe, peer, 2, b"second")
            echo(peer, 1, b"first again", probe.timeout)
        except Rejected as exc:
            return INFO, (f"SYN 2 while stream 1 is open got {exc}: one stream per session, as "
                          "'Multiplexing removed' says; sing-anytls clients can send SYN 2 "
                          "before FIN 1")
    return PASS, "streams 1 and 2 open at once, both echo"


@check("sid-1-again", section="Client › Session")
def sid_1_again(probe: ServerProbe) -> Verdict:
    with probe.session() as peer:
        open_and_echo(probe, peer, 1, b"first")
        peer.fin(1)
        open_and_echo(probe, peer, 1, b"again", reopened=True)
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
        open_and_echo(probe, good, 1, b"before")
        with probe.raw() as bad:
            bad.send_auth(probe.password, 30)
            # an HTTP request and 0xFF bytes: unknown commands with long data, never a stream
            bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\xff" * 4096)
            bad_closed = bad.closed_within(1.0)
        echo(good, 1, b"after the garbage", probe.timeout)
    fate = "closed by the server" if bad_closed else "left open"
    return PASS, f"the garbage session was {fate}; the other session still echoes"

