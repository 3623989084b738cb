"""The anytls server: spec "Server › Authentication", "Server › Session", "Server › Proxy".

One accept thread; per TLS connection one thread that does the handshake and the
authentication under a deadline, then runs the session reader; per stream one thread that
reads the target address, dials it, answers cmdSYNACK (version 2 clients) and relays.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import partial

from .. import __version__
from ..auth import check_auth, password_hash
from ..config.links import format_link
from ..config.model import User
from ..config.pin import format_fingerprint
from ..effects import CloseSession, OpenStream
from ..errors import AnyTLSError, AuthenticationError, ConnectionClosed
from ..frame import NEED_DATA
from ..padding import DEFAULT_SCHEME, PaddingScheme, parse_scheme
from ..rules import ServerRules
from ..socksaddr import SocksAddr, decode_socksaddr
from ..uot import UOT_LEGACY_MAGIC, UOT_V2_MAGIC
from .listener import ThreadedListener
from .relay import relay_sockets, relay_stream
from .sockutil import set_nodelay
from .session import Session, SessionEnded
from .stats import Counters
from .stream import Stream
from .tls import ThreadSafeTLS, leaf_fingerprint, server_identity
from .trace import Tracer
from .udp import serve_uot

log = logging.getLogger("anytls_ref.server")

#: The first read of the authentication: Go servers read one TLS record (at most 16 KiB).
FIRST_READ_SIZE = 1 << 14
#: the name the log gives the user of ``ServerConfig.password``
DEFAULT_USER = "default"


@dataclass
class ServerConfig:
    listen: tuple[str, int]
    #: the password of the user named DEFAULT_USER ("" when ``users`` are all there are)
    password: str = ""
    cert_file: str | None = None
    key_file: str | None = None
    padding_scheme: bytes = DEFAULT_SCHEME
    fallback: tuple[str, int] | None = None
    min_version: int = 1
    handshake_timeout: float = 10.0  #: TLS handshake plus authentication
    dial_timeout: float = 10.0  #: connecting to a stream's target
    address_timeout: float = 30.0  #: waiting for a new stream's target address
    trace: bool = False
    #: more users, each with a password of its own: each session's log line names its user
    #: (decisions.md D44)
    users: tuple[User, ...] = ()
    #: connections held at once (None: listener.default_max_connections())
    max_connections: int | None = None


@dataclass
class ServerStats(Counters):
    connections: int = 0
    auth_failures: int = 0
    sessions: int = 0
    streams: int = 0
    bytes_up: int = 0  #: client → target
    bytes_down: int = 0  #: target → client
    #: per session, in order: the padding-md5 its client announced (for interop observations)
    client_md5s: list[str | None] = field(default_factory=list, repr=False)


class ServerSession(Session):
    """A session on the server: starts a thread per stream the client opens."""

    def __init__(self, server: Server, sock: ssl.SSLSocket, label: str) -> None:
        scheme = server.scheme
        super().__init__(
            sock,
            ServerRules(scheme.md5, scheme.raw, server.config.min_version),
            label=label,
            tracer=Tracer() if server.config.trace else None,
        )
        self.server = server
        #: stream threads still running; the session ends only after they have (on_closed)
        self._streams_running = 0
        self._streams_done = threading.Condition()
        self._settings_recorded = False

    def on_effect(self, effect) -> None:
        if isinstance(effect, OpenStream):
            stream = Stream(self, effect.stream_id)
            with self._state_lock:
                self.streams[effect.stream_id] = stream
            self.server.stats.add(streams=1)
            if not self._settings_recorded:  # a first stream means cmdSettings was accepted
                self._settings_recorded = True
                settings = self.rules.client_settings
                with self.server.stats.lock:
                    self.server.stats.client_md5s.append(settings.padding_md5 if settings else None)
            with self._streams_done:
                self._streams_running += 1
            if not self.server.workers.spawn(partial(self._run_stream, stream),
                                             f"{self.label}-sid{effect.stream_id}"):
                self._stream_ended()  # the server is closing: no thread, no stream
                stream.close()

    def _apply(self, effect) -> None:
        if isinstance(effect, CloseSession):
            # the server closes a session only to reject its client (after cmdAlert): one clear
            # line saying which client and why
            settings = self.rules.client_settings
            name = settings.client if settings is not None and settings.client else "unnamed"
            log.warning("%s: %s (client %s)", self.label, effect.text, name)
        super()._apply(effect)

    @property
    def streams_running(self) -> int:
        return self._streams_running

    def on_closed(self) -> None:
        with self._streams_done:
            while self._streams_running:
                self._streams_done.wait()

    def _run_stream(self, stream: Stream) -> None:
        try:
            self._serve_stream(stream)
        finally:
            self._stream_ended()

    def _stream_ended(self) -> None:
        with self._streams_done:
            self._streams_running -= 1
            self._streams_done.notify_all()
        self.server.stream_ended()

    def report(self, stream: Stream, error: str | None) -> None:
        """Tell the client how the outbound connection went (cmdSYNACK for v ≥ 2)."""
        with self._state_lock:
            effects = self.rules.stream_result(stream.stream_id, error)
            if error is not None:
                self.streams.pop(stream.stream_id, None)
        self._apply_all(effects, quiet=True)

    def _serve_stream(self, stream: Stream) -> None:
        name = f"{self.label} sid {stream.stream_id}"
        try:
            target, rest = read_target(stream, self.server.config.address_timeout)
            if target.host in (UOT_V2_MAGIC, UOT_LEGACY_MAGIC):
                # [PROXY-UDP-UOT] "For requests with target address sp.v2.udp-over-tcp.arpa, the
                # sing-box udp-over-tcp protocol should be used for processing."
                serve_uot(stream, target.host, rest, lambda error: self.report(stream, error),
                          name, self.server.config.address_timeout)
                return
            try:
                outbound = socket.create_connection(
                    (target.host, target.port), timeout=self.server.config.dial_timeout)
            except OSError as exc:
                log.info("%s: dial %s failed: %s", name, target, exc)
                self.report(stream, f"dial {target}: {exc.strerror or exc}")
                return
            with outbound:
                # [SESS-SYNACK-AFTER-DIAL] "after the proxy outbound connection TCP handshake is
                # completed" (ServerRules.stream_result sends it to v2 clients only); first
                # thing, as the client waits for it
                self.report(stream, None)
                outbound.settimeout(None)
                set_nodelay(outbound)
                log.debug("%s: connected to %s", name, target)
                if rest:
                    outbound.sendall(rest)
                relay_stream(stream, outbound, name=name)
        except AnyTLSError as exc:
            # a malformed or missing address ends this stream only (SYNACK error, then FIN)
            log.info("%s: %s", name, exc)
            self.report(stream, str(exc))
        except OSError as exc:
            log.info("%s: %s", name, exc)
        finally:
            self.server.stats.add(bytes_up=stream.bytes_in, bytes_down=stream.bytes_out)
            stream.close()


def read_target(stream: Stream, timeout: float) -> tuple[SocksAddr, bytes]:
    """The SocksAddr at the start of a stream, and any bytes after it."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        result = decode_socksaddr(buf)
        if result is not NEED_DATA:
            addr, used = result
            return addr, buf[used:]
        try:
            data = stream.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise ConnectionClosed("no target address in time") from None
        if not data:
            raise ConnectionClosed("stream closed before its target address")
        buf += data


class Server(ThreadedListener):
    """Listens, accepts, and owns every connection thread. ``close()`` stops and joins them."""

    thread_name = "anytls-conn"

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.scheme: PaddingScheme = parse_scheme(config.padding_scheme)
        users = ((User(DEFAULT_USER, config.password),) if config.password else ()) + config.users
        if not users:
            raise ValueError("the server needs a password or users")
        self.user_names = [user.name for user in users]
        self.password_hashes = [password_hash(user.password) for user in users]
        self.ssl_context, self.certificate_pem = server_identity(config.cert_file, config.key_file)
        #: SHA-256 of the certificate's leaf: what a client's --pin names
        self.fingerprint = leaf_fingerprint(self.certificate_pem)
        self.stats = ServerStats()
        self._sessions: set[ServerSession] = set()
        super().__init__(config.listen, max_connections=config.max_connections)

    def start(self) -> None:
        super().start()
        fingerprint = format_fingerprint(self.fingerprint)
        users = len(self.user_names)
        # the start-up line: what runs, where, for how many, with which scheme and certificate
        log.info("anytls server listening on %s:%d (anytls-ref %s; %d user%s; padding scheme "
                 "md5 %s; certificate sha256 %s)", *self.address, __version__, users,
                 "" if users == 1 else "s", self.scheme.md5, fingerprint)
        log.info("certificate sha256 %s (%s)", fingerprint,
                 self.config.cert_file or "self-signed, made at start")
        host = self.config.listen[0] if self.config.listen[0] not in ("", "0.0.0.0", "::") \
            else "HOST"
        log.info("clients: --pin %s, or the share link %s with PASSWORD%s filled in "
                 "(anytls-ref link prints it whole)", fingerprint,
                 format_link(host, self.address[1], "PASSWORD", pin=self.fingerprint),
                 " and HOST" if host == "HOST" else "")

    def on_accept(self) -> None:
        self.stats.add(connections=1)

    def busy(self) -> int:
        """Streams running (a graceful stop waits for them, not for idle sessions)."""
        return sum(session.streams_running for session in self._sessions)

    def stream_ended(self) -> None:
        with self._room:
            self._room.notify_all()  # drain() may be waiting for the last stream

    def _wake_all(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.shutdown("server closing")
        super()._wake_all()

    # ---- one connection ----

    def handle(self, raw: socket.socket, peer: tuple, seq: int) -> None:
        label = f"conn {seq}"
        set_nodelay(raw)
        raw.settimeout(self.config.handshake_timeout)
        try:
            tls = self.ssl_context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("%s from %s: TLS handshake failed: %s", label, peer[0], exc)
            return
        with self._lock:  # from now on close() must wake the TLS socket
            self._open_socks.discard(raw)
            self._open_socks.add(tls)
        self._serve_tls(tls, peer, label)

    def _serve_tls(self, tls: ssl.SSLSocket, peer: tuple, label: str) -> None:
        try:
            first = tls.recv(FIRST_READ_SIZE)
            received = first
            request = check_auth(received, self.password_hashes)
            while request is NEED_DATA:
                # the whole hash matched; its padding0 length came in a record of its own
                # (anytls-rs writes them apart; decisions.md D5)
                chunk = tls.recv(FIRST_READ_SIZE)
                if not chunk:
                    raise ConnectionClosed("closed before the padding0 length")
                received += chunk
                request = check_auth(received, self.password_hashes)
            missing = request.padding0_missing
            # [AUTH-SERVER-VERIFY] "Read the first data packet, verify the authentication
            # request (including completely reading padding0)."
            while missing:
                chunk = tls.recv(min(missing, FIRST_READ_SIZE))
                if not chunk:
                    raise ConnectionClosed("closed while sending padding0")
                missing -= len(chunk)
            initial = request.rest
        except AuthenticationError as exc:
            # [AUTH-SERVER-REJECT] "If it doesn't match, close the connection directly or
            # "fallback" to any "legal" L7 application."
            self.stats.add(auth_failures=1)
            log.info("%s from %s: authentication failed (%s)", label, peer[0], exc)
            self._fallback(tls, first, label)
            self._discard(tls)
            return
        except (OSError, ConnectionClosed) as exc:
            log.info("%s from %s: closed during authentication: %s", label, peer[0], exc)
            self._discard(tls)
            return
        tls.settimeout(None)
        session = ServerSession(self, tls, label)
        with self._lock:
            self._open_socks.discard(tls)
            if self._closing.is_set():
                tls.close()
                return
            self._sessions.add(session)
        self.stats.add(sessions=1)
        log.info("%s from %s: user %s", label, peer[0], self.user_names[request.user])
        if session.tracer:
            session.tracer.auth_in(label, request.padding0_length)
        try:
            session.run_reader(initial)
        finally:
            with self._lock:
                self._sessions.discard(session)
            reason = session.error
            # a rejection (SessionEnded) was logged when it happened
            if reason is not None and not isinstance(reason, (ConnectionClosed, SessionEnded)):
                log.info("%s: session ended: %s", label, reason)

    def _discard(self, tls: ssl.SSLSocket) -> None:
        with self._lock:
            self._open_socks.discard(tls)
        tls.close()

    def _fallback(self, tls: ssl.SSLSocket, first: bytes, label: str) -> None:
        """Relay a failed authentication to the fallback service, or just close."""
        if self.config.fallback is None:
            return
        try:
            backend = socket.create_connection(self.config.fallback,
                                               timeout=self.config.dial_timeout)
        except OSError as exc:
            log.info("%s: fallback %s:%d unreachable: %s", label, *self.config.fallback, exc)
            return
        with backend:
            backend.settimeout(None)
            tls.settimeout(None)
            set_nodelay(backend)
            try:
                # every byte already read goes first, so the visitor sees the real service
                backend.sendall(first)
            except OSError:
                return
            # both directions use the TLS socket at once: only through ThreadSafeTLS
            relay_sockets(ThreadSafeTLS(tls), backend, name=f"{label} fallback")
