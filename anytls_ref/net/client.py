"""The anytls client: spec "Client › Authentication", "Client › Session", "Client › Reuse".

``Client.open_stream(target)`` returns an open Stream to ``target`` through the server. It
reuses the newest idle session or creates one (TCP, TLS, authentication, reader thread); a new
session's first write is cmdSettings + cmdSYN + cmdPSH(target address), packet 1 of the padding
scheme. When the stream closes and its session is healthy, the session goes back to the pool.

What is decided here is decided by the pure layer: when a stream counts as open
(``version.open_plan`` / ``open_outcome``), which session to reuse and when to retry on a new
one (``reuse``), what each received frame means (``rules``). The watchdog and the heartbeats
live in keepalive.py.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from .. import CLIENT_NAME
from ..auth import encode_auth, password_hash
from ..effects import (
    CloseSession,
    HeartbeatAnswered,
    NewPaddingScheme,
    PeerVersion,
    StreamReady,
)
from ..errors import AnyTLSError, PaddingSchemeError, Reason, StreamOpenError
from ..frame import encode_psh
from ..padding import DEFAULT, Padder, PaddingScheme, padding0_length, parse_scheme
from ..params import ClientParams
from ..reuse import IdlePool, retry_on_new_session
from ..rules import ClientRules
from ..socksaddr import SocksAddr, encode_socksaddr
from ..version import OpenResult, open_plan, waits_for_answer
from .diagnose import silent_server
from .keepalive import Heartbeats, SynackWatchdog
from .relay import set_nodelay
from .session import Session
from .stats import Counters
from .stream import Stream
from .tls import client_context, connect_tls
from .trace import Tracer

log = logging.getLogger("anytls_ref.client")

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
    #: ``--wait-synack`` (decisions.md D34): open_stream returns only once the server has
    #: answered, so a refused target is a SOCKS5 error reply, at the cost of a round trip per
    #: stream. By default it returns once cmdSYN is written (as the Go clients do); an error
    #: cmdSYNACK then closes the stream, and a missing one closes the session (Go's watchdog,
    #: keepalive.SynackWatchdog)
    wait_synack: bool = False
    #: ``--pin``: SHA-256 of the server's leaf certificate, checked after the handshake and
    #: before the authentication; no CA chain is then needed (decisions.md D45)
    pin: bytes | None = None
    #: ALPN protocols to offer (a share link's or config's ``alpn``)
    alpn: tuple[str, ...] = ()
    #: the node's name (a share link's #fragment, a config's tag or name), for the log
    name: str | None = None


@dataclass
class ClientStats(Counters):
    sessions: int = 0
    streams: int = 0
    reused: int = 0
    tls_resumed: int = 0  #: new sessions whose TLS handshake resumed an earlier one (D38)
    heartbeats: int = 0  #: cmdHeartRequest sent
    heartbeat_failures: int = 0  #: sessions dropped for want of a cmdHeartResponse
    #: per session, in order: the padding scheme md5 it announced (for interop observations)
    session_md5s: list[str] = field(default_factory=list, repr=False)


class ClientSession(Session):
    """A session on the client: one stream at a time; learns the server's version."""

    def __init__(self, client: Client, sock: ssl.SSLSocket, seq: int, scheme: PaddingScheme,
                 padder: Padder) -> None:
        super().__init__(
            sock,
            ClientRules(client.config.client_name, scheme.md5),
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
        #: whether the server answers our FIN with its own (None: not seen yet; D40)
        self.server_answers_fin: bool | None = None
        #: open_stream calls between taking this session and its stream being registered (under
        #: the client's lock): the session is not idle meanwhile, whatever its streams say
        self.opening = 0
        #: the client chose to end it (idle, closing, not reused), rather than the server
        self.ended_here = False

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
        if isinstance(effect, StreamReady):
            stream = self.streams.get(effect.stream_id)
            if stream is not None:
                stream.answered(OpenResult(effect.reason, effect.error or ""))
        elif isinstance(effect, PeerVersion):
            log.debug("%s: server speaks version %d", self.label, effect.version)
            for stream in list(self.streams.values()):
                stream.wake()
            # the TLS tickets came before this; reading the session costs ~140 µs (a copy), done
            # here while the first stream still waits for the server's dial (D38)
            self.ticket = self.tls.resumable_session()
        elif isinstance(effect, NewPaddingScheme):
            self.client.update_padding_scheme(effect.raw, self.label)
        elif isinstance(effect, HeartbeatAnswered):
            with self._heart:
                self.heartbeats_answered += 1
                self.alive_at = time.monotonic()
                self._heart.notify_all()

    def _apply(self, effect) -> None:
        if isinstance(effect, CloseSession) and effect.alert is not None:
            self.alert = effect.alert
            if effect.reason is Reason.UNSUPPORTED_SID:
                # the ssrlive 0.3.x server accepts only sid 1 (decisions.md D32); decided here,
                # not by a waiting open_stream, because by default nobody waits
                self.client.stop_reuse(effect.alert)
        super()._apply(effect)

    def on_stream_gone(self) -> None:
        # the server ended the stream (cmdFIN): the session is idle again now, before the
        # application sees its connection end, not once the stream's relay thread has noticed;
        # its next connection, which may come at once, finds the session in the pool
        self.client.stream_done(self)

    def shutdown(self, reason: BaseException | str = "closed") -> None:
        if isinstance(reason, str) and self.error is None:
            self.ended_here = True  # a decision (a string), not a failure (an exception)
        super().shutdown(reason)

    def on_closed(self) -> None:
        with self._heart:
            self._heart.notify_all()  # a heartbeat waiter gives up at once
        self.client.session_closed(self)
        if self.frames_in == 0 and not self.ended_here:
            # not one frame after our password went out: the likeliest cause is the password
            self.client.diagnosis(silent_server(self.first_bytes or b"", self.client.config.server))

    def stream_closed(self, stream: Stream) -> None:
        super().stream_closed(stream)
        self.client.stream_done(self)

    def stream_finished(self, stream: Stream) -> None:
        super().stream_finished(stream)
        self.client.stream_done(self)  # a stream we are done sending on does not keep it busy

    @property
    def busy(self) -> bool:
        """A stream is being opened or still sends on this session (D40: one we finished,
        whose answer may still come, does not count: Go servers never send their FIN for it)."""
        return self.opening > 0 or any(s.sending for s in tuple(self.streams.values()))

    def open_stream(self, target: SocksAddr, initial: bytes = b"") -> Stream:
        """Send SYN + PSH(address + initial) (after cmdSettings on a new session) as one write."""
        address = encode_socksaddr(target)  # a bad one fails here, before any state changes
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
        # cmdPSH(proxy target address)"
        self.write(first + syn + encode_psh(stream_id, address + initial))
        # [PAD-PACKET2] "Packet 2 should be the first data packet proxied from the user": the
        # stream's first sendall is this session's next write
        return stream


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
        self._watchdog = SynackWatchdog()
        self._diagnosed: set[str] = set()
        self.heartbeats = None if config.heartbeat is None else Heartbeats(
            config.heartbeat, config.heartbeat_timeout, self.idle_sessions, self._drop_idle)

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
                raise StreamOpenError("client is closed", Reason.CLIENT_CLOSING)
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
        session.opening = 1  # for the stream it is made for
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
                        session.opening += 1
                        break
            if (session is None or self.heartbeats is None
                    or self.heartbeats.alive_for_reuse(session)):
                return session
            with self._lock:
                session.opening -= 1
            # it did not answer its heartbeat and is dropped: the next idle one, or a new one

    def _drop_idle(self, session: ClientSession) -> None:
        """Out of the pool at once, before anyone sees it closed, and closed."""
        with self._lock:
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
                    and not session.busy):
                session.alive_at = now = time.monotonic()
                self._pool.put(session.seq, session, now)
                return
            # a stream still being opened on it (its first data going out while the server
            # already refused its target and ended it) keeps it: that stream's close comes back
            # here once the opening is over
            unused = not session.streams and not session.opening
        if unused and not session.closed.is_set():
            session.shutdown("not reused")

    def diagnosis(self, text: str) -> None:
        """Log a diagnosis (diagnose.py): a warning the first time, then at debug level (a
        browser's twenty connections need not say it twenty times)."""
        with self._lock:
            first = text not in self._diagnosed
            self._diagnosed.add(text)
        log.log(logging.WARNING if first else logging.DEBUG, "%s", text)

    def session_closed(self, session: ClientSession) -> None:
        with self._lock:
            self._pool.discard(session.seq)
            self._sessions.discard(session)

    # ---- streams ----

    def open_stream(self, target: SocksAddr, initial: bytes = b"", *,
                    first_data: bytes = b"") -> Stream:
        """An open stream to ``target``; raises StreamOpenError (or OSError for the server).

        ``initial`` rides in the same cmdPSH as the address (UoT sends its request this way).
        ``first_data`` is the application's first bytes, already in hand (an HTTP proxy
        request): they go out right after cmdSYN, as the next packet, and then the stream waits
        for the server's answer (``version.waits_for_answer``).
        """
        # [REUSE-IMPLEMENT] [REUSE-NEWEST-IDLE] "Before creating a new session layer, you must
        # check if there is an "idle" session. If there is, take the session with the largest
        # Seq" (_take_idle)
        for last_try in (False, True):
            session = self._take_idle()
            reused = session is not None
            if session is None:
                # [REUSE-NEW-SESSION] "If there is no idle session, create a new session."
                session = self._new_session()
            try:
                stream = self._open_on(session, target, initial, first_data)
            except StreamOpenError as exc:
                if last_try or not retry_on_new_session(exc.reason, reused=reused):
                    raise
                log.info("%s: %s; opening the stream once more", session.label, exc)
                continue
            self.stats.add(streams=1, reused=int(reused))
            return stream

    def _open_on(self, session: ClientSession, target: SocksAddr, initial: bytes,
                 first_data: bytes) -> Stream:
        try:
            stream = session.open_stream(target, initial)
            if first_data:
                stream.sendall(first_data)
        except (AnyTLSError, OSError) as exc:
            raise StreamOpenError(f"session failed: {exc}", Reason.SESSION_CLOSED) from exc
        finally:
            with self._lock:
                session.opening -= 1  # registered (or failed): its streams tell from now on
        started = time.monotonic()
        wait = waits_for_answer(wait_synack=self.config.wait_synack, data_sent=bool(first_data))
        plan = open_plan(stream.stream_id, session.server_version, wait=wait)
        if not plan.wait:
            self._watchdog.arm(stream, plan, started)
            return stream
        try:
            stream.wait_open(plan, started)
        except StreamOpenError as exc:
            if exc.reason is Reason.NO_SYNACK:
                log.warning("%s: %s; closing the stuck session", session.label, exc)
                session.shutdown("cmdSYNACK timeout")
            stream.close()
            raise
        return stream

    # ---- idle cleanup ----

    def _start_cleaner(self) -> None:
        with self._lock:
            if self._cleaner is not None or self._closing.is_set():
                return
            self._cleaner = threading.Thread(target=self._cleanup_loop, name="anytls-idle-cleanup")
            self._cleaner.start()
            if self.heartbeats is not None:
                self.heartbeats.start()

    def check_idle_sessions(self) -> None:
        """One heartbeat round now (``--heartbeat``; see keepalive.Heartbeats)."""
        if self.heartbeats is not None:
            self.heartbeats.check_idle_sessions()

    def _cleanup_loop(self) -> None:
        # [REUSE-CLEANUP] "Regularly (such as 30s) check the session pool, close and delete
        # sessions that have been idle for more than a certain time (such as 60s)."
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
            cleaner = self._cleaner
        for session in sessions:
            session.shutdown("client closing")
        for session in sessions:
            if session.reader is not None:
                session.reader.join()
        if cleaner is not None:
            cleaner.join()
        if self.heartbeats is not None:
            self.heartbeats.close()
        self._watchdog.close()
