"""The anytls client: spec "Client › Authentication", "Client › Session", "Client › Reuse".

``Client.open_stream(target)`` returns an open Stream to ``target`` through the server. It
reuses the newest idle session or creates one (TCP, TLS, authentication, reader thread); a new
session's first write is cmdSettings + cmdSYN + cmdPSH(target address), packet 1 of the padding
scheme. When the stream closes and its session is healthy, the session goes back to the pool.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .. import CLIENT_NAME
from .. import session as rules_mod
from ..auth import encode_auth, password_hash
from ..errors import AnyTLSError, PaddingSchemeError
from ..frame import encode_psh
from ..padding import DEFAULT, Padder, PaddingScheme, padding0_length, parse_scheme
from ..params import ClientParams
from ..reuse import IdlePool
from ..socksaddr import SocksAddr, encode_socksaddr
from .relay import set_nodelay
from .session import Session
from .stream import Stream, StreamOpenError
from .tls import client_context, connect_tls
from .trace import Tracer

log = logging.getLogger("anytls_ref.client")

#: Go's client arms a 3 s watchdog for cmdSYNACK on streams with id ≥ 2 when the server is v ≥ 2;
#: on expiry the whole session is closed (spec "Protocol Version 2 › cmdSYNACK").
SYNACK_WATCHDOG = 3.0
#: How long the first stream of a new session waits for the server's outcome in all.
FIRST_STREAM_TIMEOUT = 15.0
#: A version ≥ 2 server answers cmdSettings with cmdServerSettings at once; with no answer in
#: this time the server is taken for version 1 (which never sends cmdSYNACK), and the stream
#: counts as open (decisions.md D14).
SERVER_SETTINGS_WAIT = 2.0
#: Active keepalive (``--heartbeat``): how long a cmdHeartRequest waits for its cmdHeartResponse
#: before the session counts as dead (the same figure as Go's cmdSYNACK watchdog).
HEARTBEAT_TIMEOUT = 3.0


@dataclass
class ClientConfig:
    server: tuple[str, int]
    password: str
    sni: str | None = None
    insecure: bool = False
    ca_file: str | None = None
    params: ClientParams | None = None
    disable_reuse: bool = False
    connect_timeout: float = 10.0
    trace: bool = False
    client_name: str | None = CLIENT_NAME
    #: active keepalive interval in seconds (None: off). Sessions idle in the pool with a v ≥ 2
    #: server get a cmdHeartRequest once per interval, and so does one about to be reused after
    #: more than an interval of quiet; no cmdHeartResponse within ``heartbeat_timeout`` drops
    #: the session (decisions.md D33).
    heartbeat: float | None = None
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT
    #: ``--fast-open`` (decisions.md D39): open_stream returns once cmdSYN is written, without
    #: waiting for the server's answer; an error cmdSYNACK then closes the stream, and a
    #: missing one closes the session after SYNACK_WATCHDOG (Go's behaviour)
    fast_open: bool = False
    #: ``--pin``: SHA-256 of the server's leaf certificate, checked after the handshake and
    #: before the authentication; no CA chain is then needed (decisions.md D45)
    pin: bytes | None = None
    #: ALPN protocols to offer (a share link's or config's ``alpn``)
    alpn: tuple[str, ...] = ()
    #: the node's name (a share link's #fragment, a config's tag or name), for the log
    name: str | None = None


@dataclass
class ClientStats:
    sessions: int = 0
    streams: int = 0
    reused: int = 0
    tls_resumed: int = 0  #: new sessions whose TLS handshake resumed an earlier one (D38)
    heartbeats: int = 0  #: cmdHeartRequest sent
    heartbeat_failures: int = 0  #: sessions dropped for want of a cmdHeartResponse
    #: per session, in order: the padding scheme md5 it announced (for interop observations)
    session_md5s: list[str] = field(default_factory=list, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class ClientSession(Session):
    """A session on the client: one stream at a time; learns the server's version."""

    def __init__(self, client: Client, sock: ssl.SSLSocket, seq: int, scheme: PaddingScheme,
                 padder: Padder) -> None:
        super().__init__(
            sock,
            rules_mod.ClientRules(client.config.client_name, scheme.md5),
            label=f"sess {seq}",
            padder=padder,
            tracer=Tracer() if client.config.trace else None,
        )
        self.client = client
        self.seq = seq
        self.next_stream_id = 1
        self.settings_sent = False
        self.created = time.monotonic()
        self.reader: threading.Thread | None = None
        self.alert: str | None = None
        #: its TLS session, to resume a newer session with (read when the server's answer
        #: came, tickets first), and whether a newer one has offered it (once only: D38)
        self.ticket: ssl.SSLSession | None = None
        self.ticket_taken = False
        #: heartbeat bookkeeping: answers received, and when the session was last known alive
        #: (created, back in the pool, or a cmdHeartResponse)
        self._heart = threading.Condition()
        self.heartbeats_answered = 0
        self.alive_at = self.created

    @property
    def server_version(self) -> int | None:
        return self.rules.server_version

    @property
    def can_heartbeat(self) -> bool:
        return self.server_version is not None and self.rules.features.heartbeat

    def send_heartbeat(self) -> int:
        """Send cmdHeartRequest; returns the answer count to pass to ``heartbeat_answered``."""
        with self._heart:
            answered = self.heartbeats_answered
        self.write(self.rules.heart_request())
        self.client.stats.add(heartbeats=1)
        return answered

    def heartbeat_answered(self, answered_before: int, deadline: float) -> bool:
        """Wait until a cmdHeartResponse newer than ``answered_before`` arrives (True), or the
        deadline passes or the session closes (False)."""
        with self._heart:
            while self.heartbeats_answered <= answered_before and not self.closed.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._heart.wait(remaining)
            return self.heartbeats_answered > answered_before

    def on_effect(self, effect) -> None:
        if isinstance(effect, rules_mod.StreamReady):
            stream = self.streams.get(effect.stream_id)
            if stream is not None:
                stream.set_open_result(effect.error)
                if effect.error is not None and self.client.config.fast_open:
                    # nobody waits for the answer: the error is only logged, and the stream
                    # closed by the StreamClosed effect that follows
                    log.info("%s: sid %d: %s", self.label, effect.stream_id, effect.error)
        elif isinstance(effect, rules_mod.PeerVersion):
            log.debug("%s: server speaks version %d", self.label, effect.version)
            for stream in list(self.streams.values()):
                stream.wake()
            # the TLS tickets came before this; reading the session costs ~140 µs (a copy), done
            # here while the first stream still waits for the server's dial (D38)
            self.ticket = self.tls.resumable_session()
        elif isinstance(effect, rules_mod.NewPaddingScheme):
            self.client.update_padding_scheme(effect.raw, self.label)
        elif isinstance(effect, rules_mod.HeartbeatAnswered):
            with self._heart:
                self.heartbeats_answered += 1
                self.alive_at = time.monotonic()
                self._heart.notify_all()

    def _apply(self, effect) -> None:
        if isinstance(effect, rules_mod.CloseSession) and effect.alert is not None:
            self.alert = effect.alert
            if "unsupported sid" in effect.alert:
                # the ssrlive 0.3.x server accepts only sid 1 (decisions.md D32); decided here,
                # not by a waiting open_stream, because with --fast-open nobody waits
                self.client.stop_reuse(effect.alert)
        super()._apply(effect)
        if isinstance(effect, rules_mod.StreamClosed):
            # the server ended the stream (cmdFIN): the session is idle again now, not only
            # once the stream's relay thread has noticed, so that the application's next
            # connection, which may come at once, finds it in the pool
            self.client.stream_done(self)

    def on_closed(self) -> None:
        with self._heart:
            self._heart.notify_all()  # a heartbeat waiter gives up at once
        self.client.session_closed(self)

    def stream_closed(self, stream: Stream) -> None:
        super().stream_closed(stream)
        self.client.stream_done(self)

    def open_stream(self, target: SocksAddr, initial: bytes = b"") -> Stream:
        """Send SYN + PSH(address + initial) (after cmdSettings on a new session) as one write."""
        with self._state_lock:
            # [SESS-SYN-SID-INCREASING] "The client should generate a monotonically increasing
            # streamId within the Session for each Stream."
            stream_id = self.next_stream_id
            self.next_stream_id += 1
            syn = self.rules.open_stream(stream_id)
            stream = Stream(self, stream_id)
            self.streams[stream_id] = stream
            first = b""
            if not self.settings_sent:
                # [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings when
                # starting a new session."
                first = self.rules.settings_frame()
                self.settings_sent = True
        # [PAD-PACKET1] "Packet 1 should include: cmdSettings and the first Stream's cmdSYN +
        # cmdPSH(proxy
        # target address)"
        self.write(first + syn + encode_psh(stream_id, encode_socksaddr(target) + initial))
        # [PAD-PACKET2] "Packet 2 should be the first data packet proxied from the user": the
        # stream's first sendall is this session's next write
        return stream


class SynackWatchdog:
    """``--fast-open``: streams are handed out before their cmdSYNACK, so nobody waits for it.
    This thread keeps Go's watchdog instead: a session with a stream (id ≥ 2, version ≥ 2
    server) still unanswered ``SYNACK_WATCHDOG`` after its cmdSYN is stuck, and is closed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        #: (deadline, stream), oldest first: every deadline is "now + the same delay"
        self._armed: deque[tuple[float, Stream]] = deque()
        self._closing = False
        self._thread: threading.Thread | None = None

    def arm(self, stream: Stream, deadline: float) -> None:
        with self._cond:
            if self._closing:
                return
            self._armed.append((deadline, stream))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="anytls-synack-watchdog")
                self._thread.start()
            elif len(self._armed) == 1:
                self._cond.notify()  # it was waiting with nothing armed

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._armed
                                             or self._armed[0][0] > time.monotonic()):
                    self._cond.wait(self._armed[0][0] - time.monotonic() if self._armed else None)
                if self._closing:
                    return
                _, stream = self._armed.popleft()
            session = stream.session
            if stream.waiting_to_open and not session.closed.is_set():
                log.warning("%s: no cmdSYNACK for sid %d within %.1f s; closing the stuck "
                            "session", session.label, stream.stream_id, SYNACK_WATCHDOG)
                session.shutdown("cmdSYNACK timeout")

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()


class Client:
    """The session pool, and the one way to open streams to the server."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.params = config.params or ClientParams(config.password)
        self.password_hash = password_hash(config.password)
        self.ssl_context = client_context(insecure=config.insecure, ca_file=config.ca_file,
                                          pin=config.pin, alpn=config.alpn)
        host = config.server[0]
        self.server_hostname = config.sni or host
        self.stats = ClientStats()
        #: [PAD-STORE-PER-CLIENT] "The client should store paddingScheme in the Client object"
        self.scheme: PaddingScheme = DEFAULT
        self._rng = random.SystemRandom()
        self._lock = threading.Lock()
        self._pool: IdlePool[ClientSession] = IdlePool()
        self._sessions: set[ClientSession] = set()
        self._reuse_ok = not config.disable_reuse
        self._closing = threading.Event()
        self._cleaner: threading.Thread | None = None
        self._heartbeater: threading.Thread | None = None
        self._watchdog = SynackWatchdog()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- padding scheme ----

    def update_padding_scheme(self, raw: bytes, label: str) -> None:
        try:
            scheme = parse_scheme(raw)
        except PaddingSchemeError as exc:
            log.warning("%s: server sent an unusable padding scheme (%s); keeping ours", label, exc)
            return
        with self._lock:
            # [PAD-UPDATE-NEW-SESSIONS] "subsequent new sessions must use the paddingScheme issued
            # by the server": _new_session reads self.scheme
            self.scheme = scheme
        log.info("%s: padding scheme updated by the server (md5 %s)", label, scheme.md5)

    # ---- sessions ----

    def _new_session(self) -> ClientSession:
        with self._lock:
            if self._closing.is_set():
                raise StreamOpenError("client is closed")
            seq = self._pool.next_seq()
            scheme = self.scheme
        raw = socket.create_connection(self.config.server, timeout=self.config.connect_timeout)
        try:
            set_nodelay(raw)
            resume = self._ticket_to_resume()
            tls = connect_tls(self.ssl_context, raw, self.server_hostname, resume,
                              self.config.pin)
        except BaseException:
            raw.close()
            raise
        if tls.session_reused:
            self.stats.add(tls_resumed=1)
        tls.settimeout(None)
        try:
            # [PAD-PADDING0-WITH-AUTH] "The client should send the padding of this length
            # together with sha256(password)": packet 0, in ONE TLS record (Go servers read one)
            tls.sendall(encode_auth(self.password_hash, padding0_length(scheme, self._rng)))
        except OSError:
            tls.close()
            raise
        session = ClientSession(self, tls, seq, scheme, Padder(scheme, self._rng))
        with self._lock:
            self._sessions.add(session)
        session.reader = threading.Thread(target=session.run_reader, name=f"anytls-sess-{seq}")
        session.reader.start()
        self.stats.add(sessions=1)
        with self.stats.lock:
            self.stats.session_md5s.append(scheme.md5)
        self._start_cleaner()
        log.debug("%s: new session to %s:%d%s", session.label, *self.config.server,
                  f" ({self.config.name})" if self.config.name else "")
        return session

    def _ticket_to_resume(self) -> ssl.SSLSession | None:
        """The TLS session of the newest session whose ticket is still unused (decisions.md
        D38). Resuming skips the server's certificate and signature (about 1 ms with
        anytls-go's RSA key); each ticket is offered once, as browsers do, so that connections
        cannot be linked by it ("Clients SHOULD NOT reuse a ticket", RFC 8446 C.4)."""
        with self._lock:
            unused = [s for s in self._sessions if s.ticket is not None and not s.ticket_taken
                      and not s.closed.is_set()]
            newest = max(unused, key=lambda s: s.seq, default=None)
            if newest is None:
                return None
            newest.ticket_taken = True
            return newest.ticket

    def _take_idle(self) -> ClientSession | None:
        while True:
            session = None
            with self._lock:
                while self._reuse_ok and (taken := self._pool.take()) is not None:
                    if not taken[1].closed.is_set():
                        session = taken[1]
                        break
            if session is None or self._alive_for_reuse(session):
                return session
            # it did not answer its heartbeat and is dropped: the next idle one, or a new one

    def _alive_for_reuse(self, session: ClientSession) -> bool:
        """Active keepalive before reuse: a session quiet for longer than the heartbeat interval
        must answer a cmdHeartRequest first (decisions.md D33)."""
        interval = self.config.heartbeat
        if (interval is None or not session.can_heartbeat
                or time.monotonic() - session.alive_at <= interval):
            return True
        try:
            answered = session.send_heartbeat()
        except (AnyTLSError, OSError):
            return False  # the write failed: the session is closing already
        if session.heartbeat_answered(answered, time.monotonic() + self.config.heartbeat_timeout):
            return True
        self._heartbeat_failed(session, "before reuse")
        return False

    def _heartbeat_failed(self, session: ClientSession, when: str) -> None:
        log.warning("%s: no cmdHeartResponse within %.1f s (%s); dropping the session",
                    session.label, self.config.heartbeat_timeout, when)
        self.stats.add(heartbeat_failures=1)
        with self._lock:  # out of the pool at once, before anyone sees it closed
            self._pool.discard(session.seq)
        session.shutdown("heartbeat timeout")

    def stop_reuse(self, reason: str) -> None:
        """One session per stream from now on: the server rejects reused sessions."""
        with self._lock:
            if self._reuse_ok:
                log.warning("server rejects reused sessions (%s); reuse disabled", reason)
            self._reuse_ok = False

    def stream_done(self, session: ClientSession) -> None:
        """A stream of ``session`` ended: back to the pool if healthy (spec "Reuse")."""
        with self._lock:
            # [REUSE-RETURN-IDLE] "if the event loop of the corresponding Session does not
            # encounter an error, the Session is put into the "idle session pool""
            if (self._reuse_ok and not session.closed.is_set() and not self._closing.is_set()
                    and not session.streams):
                session.alive_at = now = time.monotonic()
                self._pool.put(session.seq, session, now)
                return
        if not session.closed.is_set() and not session.streams:
            session.shutdown("not reused")

    def session_closed(self, session: ClientSession) -> None:
        with self._lock:
            self._pool.discard(session.seq)
            self._sessions.discard(session)

    # ---- streams ----

    def open_stream(self, target: SocksAddr, initial: bytes = b"") -> Stream:
        """An open stream to ``target``; raises StreamOpenError (or OSError for the server).

        ``initial`` rides in the same cmdPSH as the address (UoT sends its request this way).
        """
        for attempt in (1, 2):
            # [REUSE-IMPLEMENT] [REUSE-NEWEST-IDLE] "Before creating a new session layer, you
            # must check if there is an "idle" session. If there is, take the session with the
            # largest Seq"
            session = self._take_idle()
            reused = session is not None
            if session is None:  # [REUSE-NEW-SESSION] "If there is no idle session, create a
                session = self._new_session()  # new session."
            try:
                stream = self._open_on(session, target, initial, reused)
            except StreamOpenError as exc:
                if attempt == 1 and exc.retry_on_new_session:
                    log.info("%s: %s; retrying on a new session", session.label, exc)
                    continue
                raise
            self.stats.add(streams=1, reused=int(reused))
            return stream
        raise AssertionError("unreachable")

    def _open_on(self, session: ClientSession, target: SocksAddr, initial: bytes,
                 reused: bool) -> Stream:
        try:
            stream = session.open_stream(target, initial)
        except (AnyTLSError, OSError) as exc:
            # a pooled session that died under us: try once more on a fresh one
            raise StreamOpenError(f"session failed: {exc}", retry_on_new_session=True) from exc
        now = time.monotonic()
        version = session.server_version
        if self.config.fast_open:
            if version is not None and version >= 2 and stream.stream_id >= 2:
                self._watchdog.arm(stream, now + SYNACK_WATCHDOG)
            return stream
        try:
            if version is not None and version >= 2:
                if stream.stream_id >= 2:
                    # [V2-SYNACK-TIMEOUT] the v2 watchdog: no SYNACK within 3 s means the
                    # session is stuck ("the client can close the stuck connection in advance")
                    stream.wait_open(now + SYNACK_WATCHDOG)
                else:
                    stream.wait_open(now + FIRST_STREAM_TIMEOUT)
            elif version is None and stream.stream_id == 1:
                self._wait_first(session, stream, now)
            # a version-1 server never answers: the stream is open as soon as it is sent
        except StreamOpenError as exc:
            if session.alert is not None and "unsupported sid" in session.alert:
                # the ssrlive 0.3.x server accepts only sid 1: retry once on a fresh session
                # (the session has stopped reuse already: decisions.md D32)
                stream.close()
                raise StreamOpenError(str(exc), retry_on_new_session=True) from exc
            if reused and session.closed.is_set() and session.alert is None:
                # an idle session that died while unused (peers.md §4): once more, on a new one
                stream.close()
                raise StreamOpenError(str(exc), retry_on_new_session=True) from exc
            if "no cmdSYNACK" in str(exc):
                log.warning("%s: %s; closing the stuck session", session.label, exc)
                session.shutdown("cmdSYNACK timeout")
            stream.close()
            raise
        return stream

    def _wait_first(self, session: ClientSession, stream: Stream, start: float) -> None:
        """First stream of a new session: wait for the server's version, then its SYNACK."""
        stream.wait_open(start + FIRST_STREAM_TIMEOUT,
                         assume_open_at=start + SERVER_SETTINGS_WAIT
                         if session.server_version is None else None)
        if session.server_version is None:
            return  # no cmdServerSettings: a version-1 server, which sends no SYNACK
        if session.server_version >= 2:
            stream.wait_open(start + FIRST_STREAM_TIMEOUT)

    # ---- idle cleanup ----

    def _start_cleaner(self) -> None:
        with self._lock:
            if self._cleaner is not None or self._closing.is_set():
                return
            self._cleaner = threading.Thread(target=self._cleanup_loop, name="anytls-idle-cleanup")
            self._cleaner.start()
            if self.config.heartbeat is not None:
                self._heartbeater = threading.Thread(target=self._heartbeat_loop,
                                                     name="anytls-heartbeat")
                self._heartbeater.start()

    # ---- active keepalive (decisions.md D33) ----

    def _heartbeat_loop(self) -> None:
        while not self._closing.wait(self.config.heartbeat):
            self.check_idle_sessions()

    def check_idle_sessions(self) -> None:
        """One heartbeat round: a cmdHeartRequest to every idle session of a v ≥ 2 server quiet
        for at least the interval, then drop those with no answer within the timeout."""
        now = time.monotonic()
        asked = []
        for session in self.idle_sessions():
            if session.can_heartbeat and now - session.alive_at >= self.config.heartbeat:
                try:
                    asked.append((session, session.send_heartbeat()))
                except (AnyTLSError, OSError):
                    pass  # the write failed: the session is closing already
        deadline = time.monotonic() + self.config.heartbeat_timeout
        for session, answered in asked:
            if (not session.heartbeat_answered(answered, deadline)
                    and not session.closed.is_set() and not self._closing.is_set()):
                self._heartbeat_failed(session, "idle in the pool")

    def _cleanup_loop(self) -> None:
        # [REUSE-CLEANUP] "Regularly (such as 30s) check the session pool, close and delete
        # sessions that have
        # been idle for more than a certain time (such as 60s)."
        while not self._closing.wait(self.params.idle_session_check_interval):
            with self._lock:
                expired = self._pool.expire(time.monotonic(), self.params.idle_session_timeout,
                                            self.params.min_idle_session)
            for session in expired:
                log.debug("%s: idle too long, closing", session.label)
                session.shutdown("idle timeout")

    def idle_sessions(self) -> list[ClientSession]:
        with self._lock:
            return self._pool.sessions()

    def close(self) -> None:
        """Close every session and join every thread this client started."""
        self._closing.set()
        with self._lock:
            sessions = list(self._sessions)
            helpers = [t for t in (self._cleaner, self._heartbeater) if t is not None]
        for session in sessions:
            session.shutdown("client closing")
        for session in sessions:
            if session.reader is not None:
                session.reader.join()
        for thread in helpers:
            thread.join()
        self._watchdog.close()
