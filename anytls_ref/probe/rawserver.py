"""A scripted raw anytls server, for testing clients.

``RawServer`` is TLS, the authentication check, and a small script per connection that a
subclass (or a test) can bend through hooks. ``version=1`` makes it a version-1 server (it
never sends cmdServerSettings or cmdSYNACK); ``version=2`` answers ``v=2`` and acknowledges
every SYN. It records every frame it reads (``events``) and the plaintext of every TLS record
(``RawConnection.records``): reading with a buffer larger than a record (16 KiB) gives exactly
one record per call (scripting.RECORD_READ_SIZE). That is how ``probe client`` sees the record
sizes a client's padding produced.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..auth import AUTH_OVERHEAD, check_auth, password_hash
from ..errors import AuthenticationError
from ..frame import NEED_DATA, Command, Frame, FrameDecoder, command_name, encode_psh
from ..net.listener import ThreadedListener
from ..net.sockutil import set_nodelay, shutdown_quietly
from ..net.tls import server_context
from ..padding import PaddingScheme, parse_scheme
from ..settings import ClientSettings, ServerSettings, encode_alert
from ..socksaddr import SocksAddr, decode_socksaddr
from .scripting import DEFAULT_TIMEOUT, RECORD_READ_SIZE, frame


@dataclass(frozen=True)
class Event:
    """Something a RawServer connection saw: ``what`` is "auth", "auth-failed", a command name,
    "dropped" (we closed it) or "closed" (its thread ended), or a subclass's own word."""

    time: float
    conn: int
    what: str
    stream_id: int = 0
    data: bytes = b""


@dataclass
class RawConnection:
    """One accepted connection of a RawServer, as its hooks see it."""

    number: int
    tls: ssl.SSLSocket
    #: the version both sides run: 1 until cmdSettings (and cmdServerSettings) say otherwise
    version: int = 1
    settings: ClientSettings | None = None
    #: plaintext of each TLS record read, in order, starting with the authentication's
    records: list[bytes] = field(default_factory=list)
    #: how many records the authentication request took (1 when sent as the spec suggests)
    auth_records: int = 1
    #: streams whose SocksAddr is still being read → the bytes so far
    addressing: dict[int, bytes] = field(default_factory=dict)
    #: open streams → their target
    streams: dict[int, SocksAddr] = field(default_factory=dict)
    #: streams we closed with cmdFIN (data the client still sends on them is late, not new)
    fin_sent: set[int] = field(default_factory=set)

    def send(self, data: bytes) -> None:
        self.tls.sendall(data)

    def fin(self, stream_id: int) -> None:
        """Close stream ``stream_id`` from the server's side (cmdFIN)."""
        self.send(frame(Command.FIN, stream_id))
        self.streams.pop(stream_id, None)
        self.addressing.pop(stream_id, None)
        self.fin_sent.add(stream_id)


#: Records kept per connection (enough for every padded packet of any sane scheme).
RECORDS_KEPT = 512


class RawServer(ThreadedListener):
    """A minimal anytls server with a fixed, bendable script, for testing clients.

    Per connection: check the authentication (the whole request; ``auth_records`` says how
    many TLS records it took), then call a hook for each frame. The default hooks are a
    version-``version`` server: cmdSettings
    gets cmdUpdatePaddingScheme if ``padding_scheme`` is set and the client's md5 differs, then
    cmdServerSettings ``v=min(client's, version)`` when both are ≥ 2; a cmdSYN gets an empty
    cmdSYNACK when the session runs version 2 and ``synack(sid)`` says so; stream data is echoed
    back (the SocksAddr at its start is taken as the stream's target); cmdHeartRequest is
    answered on its stream id. No target is dialled. Every frame is recorded in ``events``.

    Subclasses override ``on_settings``, ``on_syn``, ``on_target``, ``on_data``, ``on_fin`` or
    ``on_frame`` (everything else); each runs on the connection's own thread.

    It accepts from the moment it is made (no ``start()``); ``close()`` is ThreadedListener's:
    stop accepting, wake every connection, join every thread.
    """

    thread_name = "rawserver"

    def __init__(self, password: str, *, version: int = 2,
                 synack: Callable[[int], bool] = lambda sid: True,
                 padding_scheme: bytes | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0),
                 context: ssl.SSLContext | None = None,
                 implicit_open: bool = False) -> None:
        self.password_hash = password_hash(password)
        #: a cmdPSH for a stream nobody opened opens it (as ssrlive's server does), recorded
        #: as a "PSH-without-SYN" event; otherwise such data is dropped
        self.implicit_open = implicit_open
        self.version = version
        self._synack = synack
        self.scheme: PaddingScheme | None = (parse_scheme(padding_scheme)
                                             if padding_scheme is not None else None)
        self._context = context or server_context()
        super().__init__(listen)
        self.events: list[Event] = []
        #: every connection that passed authentication, by number
        self.connections: dict[int, RawConnection] = {}
        self.start()

    def __enter__(self):
        return self  # already accepting (ThreadedListener's would start a second accept loop)

    def find(self, what: str, stream_id: int | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self.events
                    if e.what == what and (stream_id is None or e.stream_id == stream_id)]

    def record(self, conn: int, what: str, stream_id: int = 0, data: bytes = b"") -> None:
        with self._lock:
            self.events.append(Event(time.monotonic(), conn, what, stream_id, data))

    @property
    def accepted(self) -> int:
        """TCP connections accepted so far (authenticated or not)."""
        with self._lock:
            return self._seq  # the listener numbers each accepted connection

    def connection_numbers(self) -> list[int]:
        """The authenticated connections so far, in the order they came."""
        with self._lock:
            return sorted(self.connections)

    def events_of(self, conn: int) -> list[Event]:
        """Everything connection ``conn`` saw, in order."""
        with self._lock:
            return [e for e in self.events if e.conn == conn]

    def records(self, conn: int) -> list[bytes]:
        """A copy of the TLS records connection ``conn`` has read so far."""
        with self._lock:
            return list(self.connections[conn].records)

    def drop(self, conn: int) -> None:
        """Close connection ``conn`` from any thread (its own thread then cleans up). Recorded
        as a "dropped" event, so a later "closed" tells our close from the client's."""
        with self._lock:
            tls = self.connections[conn].tls if conn in self.connections else None
        if tls is not None:
            self.record(conn, "dropped")
            shutdown_quietly(tls)

    # ---- hooks: the default script ----

    def on_settings(self, conn: RawConnection, settings: ClientSettings) -> None:
        if self.scheme is not None and settings.padding_md5 != self.scheme.md5:
            conn.send(frame(Command.UPDATE_PADDING_SCHEME, 0, self.scheme.raw))
        if self.version >= 2 and settings.version >= 2:
            conn.version = min(settings.version, self.version)
            conn.send(frame(Command.SERVER_SETTINGS, 0, ServerSettings(conn.version).encode()))

    def on_syn(self, conn: RawConnection, stream_id: int) -> None:
        if conn.version >= 2 and self._synack(stream_id):
            conn.send(frame(Command.SYNACK, stream_id))

    def on_target(self, conn: RawConnection, stream_id: int, target: SocksAddr) -> None:
        """The stream's SocksAddr is complete (data after it goes to ``on_data``)."""

    def on_data(self, conn: RawConnection, stream_id: int, data: bytes) -> None:
        conn.send(encode_psh(stream_id, data))

    def on_fin(self, conn: RawConnection, stream_id: int) -> None:
        pass

    def on_frame(self, conn: RawConnection, f: Frame) -> None:
        """Every other command."""
        if f.command == Command.HEART_REQUEST:
            conn.send(frame(Command.HEART_RESPONSE, f.stream_id))

    def alert(self, conn: RawConnection, text: str) -> None:
        """Send cmdAlert (the connection stays open: the client is the one to close it)."""
        conn.send(frame(Command.ALERT, 0, encode_alert(text)))

    # ---- the machinery ----

    def handle(self, raw: socket.socket, peer: tuple, number: int) -> None:
        tls = None
        try:
            raw.settimeout(DEFAULT_TIMEOUT)
            set_nodelay(raw)
            tls = self._context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
            with self._lock:  # from now on close() must wake the TLS socket
                self._open_socks.discard(raw)
                self._open_socks.add(tls)
                if self._closing.is_set():  # close() may have woken only ``raw``
                    return
            records = [tls.recv(RECORD_READ_SIZE)]  # one TLS record
            try:
                request = check_auth(records[0], self.password_hash)
                # the hash matched, but the rest of the request is in later records (as our
                # Server, read on; ``auth_records`` tells the probe it was split)
                while request is NEED_DATA or request.padding0_missing:
                    records.append(tls.recv(RECORD_READ_SIZE))
                    if not records[-1]:
                        raise AuthenticationError("closed inside the authentication request")
                    request = check_auth(b"".join(records), self.password_hash)
            except AuthenticationError as exc:
                self.record(number, "auth-failed", data=str(exc).encode())
                return
            conn = RawConnection(number, tls, records=records, auth_records=len(records))
            with self._lock:
                self.connections[number] = conn
            self.record(number, "auth", data=b"".join(records)[:AUTH_OVERHEAD
                                                             + request.padding0_length])
            self._session(conn, request.rest)
        except OSError:
            pass
        except Exception:
            # a bug in a hook (often a test's subclass): report it as an uncaught thread
            # exception, so the test fails (tests/conftest.py thread_hygiene); ThreadedListener
            # would only log it
            threading.excepthook(threading.ExceptHookArgs(
                (*sys.exc_info(), threading.current_thread())))
        finally:
            self.record(number, "closed")
            if tls is not None:  # the listener closes ``raw``, which the TLS socket replaced
                with self._lock:
                    self._open_socks.discard(tls)
                tls.close()

    def _session(self, conn: RawConnection, initial: bytes) -> None:
        decoder = FrameDecoder()
        decoder.feed(initial)
        while True:
            while (f := decoder.next_frame()) is not NEED_DATA:
                self.record(conn.number, command_name(f.command), f.stream_id, f.data)
                self._dispatch(conn, f)
            data = conn.tls.recv(RECORD_READ_SIZE)
            if not data:
                return
            with self._lock:
                if len(conn.records) < RECORDS_KEPT:
                    conn.records.append(data)
            decoder.feed(data)

    def _dispatch(self, conn: RawConnection, f: Frame) -> None:
        if f.command == Command.SETTINGS:
            conn.settings = ClientSettings.decode(f.data)
            self.on_settings(conn, conn.settings)
        elif f.command == Command.SYN:
            conn.fin_sent.discard(f.stream_id)
            conn.addressing[f.stream_id] = b""
            self.on_syn(conn, f.stream_id)
        elif f.command == Command.PSH:
            data = f.data
            if (self.implicit_open and f.stream_id not in conn.streams
                    and f.stream_id not in conn.addressing and f.stream_id not in conn.fin_sent):
                self.record(conn.number, "PSH-without-SYN", f.stream_id)
                conn.addressing[f.stream_id] = b""
                self.on_syn(conn, f.stream_id)
            if f.stream_id in conn.addressing:  # the stream's target address comes first
                buffered = conn.addressing[f.stream_id] + data
                result = decode_socksaddr(buffered)
                if result is NEED_DATA:
                    conn.addressing[f.stream_id] = buffered
                    return
                del conn.addressing[f.stream_id]
                target, used = result
                conn.streams[f.stream_id] = target
                self.on_target(conn, f.stream_id, target)
                data = buffered[used:]
            if data and f.stream_id in conn.streams:
                self.on_data(conn, f.stream_id, data)
        elif f.command == Command.FIN:
            conn.streams.pop(f.stream_id, None)
            conn.addressing.pop(f.stream_id, None)
            conn.fin_sent.discard(f.stream_id)
            self.on_fin(conn, f.stream_id)
        else:
            self.on_frame(conn, f)
