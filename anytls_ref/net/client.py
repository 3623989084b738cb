"""The anytls client: spec "Client › Authentication", "Client › Session", "Client › Reuse".
(Each session is a ClientSession, client_session.py.)

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
from ..errors import AnyTLSError, PaddingSchemeError, Reason, StreamOpenError
from ..padding import DEFAULT, Padder, PaddingScheme, padding0_length, parse_scheme
from ..params import ClientParams
from ..reuse import IdlePool, retry_on_new_session
from ..socksaddr import SocksAddr
from ..version import open_plan, waits_for_answer
from .client_session import ClientSession
from .keepalive import Heartbeats, SynackWatchdog
from .sockutil import set_nodelay
from .stats import Counters
from .stream import Stream
from .tls import client_context, connect_tls

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
