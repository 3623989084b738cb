"""Scripted raw anytls peers: a client and a server driven frame by frame.

The real Client and Server hide the protocol behind streams and sessions. These peers show it:
the caller writes exactly the bytes it wants (a correct authentication, a SYN before Settings,
garbage, data on a command that must carry none) and reads exactly the frames that come back,
each read with a deadline, so a missing answer is reported instead of hanging. Tests use them,
and so does ``anytls-ref probe``, which is why they live in the package.

    peer = RawClient(server.address)
    peer.send_auth("password")             # sha256(password) + padding0 length + padding0
    peer.send_settings(version=2)          # cmdSettings v=2 client=... padding-md5=...
    peer.expect(Command.SERVER_SETTINGS)   # the server answers v >= 2 clients at once
    peer.open_stream(1, "127.0.0.1", port) # cmdSYN + cmdPSH(SocksAddr) in one write
    peer.expect(Command.SYNACK, sid=1)     # the outbound dial succeeded (empty data)
    peer.send_data(1, b"ping")
    assert peer.recv_data(1, 4) == b"ping"
    peer.close()

``ScriptedClient`` is a RawClient that plays one protocol version the way the spec's "Protocol
Version 2" section describes it: a version-1 client expects neither cmdServerSettings nor
cmdSYNACK (and treats either as a failure), a version-2 client sends Settings the way Go does
and runs version-2 rules only if the server answers, a version-3 client is what our own client
announces.

``RawServer`` is the other side: TLS, the authentication check, and a small script per
connection that a subclass (or a test) can bend through hooks. ``version=1`` makes it a
version-1 server (it never sends cmdServerSettings or cmdSYNACK); ``version=2`` answers ``v=2``
and acknowledges every SYN. It records every frame it reads (``events``) and the plaintext of
every TLS record (``RawConnection.records``): with the stdlib ``ssl`` module, each
``SSLSocket.recv`` returns the plaintext of at most ONE TLS record (OpenSSL's SSL_read never
joins two), so reading with a buffer larger than a record (16 KiB) gives exactly one record per
call. That is how ``probe client`` sees the record sizes a client's padding produced.

Frames are built here with the bare header struct, not frame.encode_frame, so a caller can send
what the encoder (rightly) refuses to produce.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..auth import AUTH_OVERHEAD, check_auth, encode_auth, password_hash
from ..errors import AuthenticationError
from ..frame import FRAME_HEADER, NEED_DATA, Command, Frame, FrameDecoder, command_name, encode_psh
from ..net.listener import ThreadedListener
from ..net.sockutil import set_nodelay, shutdown_quietly
from ..net.tls import server_context
from ..padding import DEFAULT, PaddingScheme, parse_scheme
from ..settings import ClientSettings, ServerSettings, encode_alert
from ..socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr
from ..version import Features

#: How long a single expectation waits unless told otherwise.
DEFAULT_TIMEOUT = 3.0
#: Bytes asked of the TLS socket per read: more than one TLS record (16 KiB), so each read
#: returns exactly one record (see the module docstring).
RECORD_READ_SIZE = 1 << 16


class ExpectationFailed(AssertionError):
    """A scripted peer did not get what it expected (the message says what came instead).

    An AssertionError, so a test that uses the peers reads like any other failed assert; the
    probe turns it into a FAIL line.
    """


def frame(command: int, stream_id: int = 0, data: bytes = b"") -> bytes:
    """One frame, any command, any data (even where the spec forbids data)."""
    return FRAME_HEADER.pack(command, stream_id, len(data)) + data


def insecure_client_context() -> ssl.SSLContext:
    """For a fresh self-signed certificate: no verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def eventually(condition: Callable[[], object], timeout: float, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; raise ExpectationFailed if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise ExpectationFailed(f"{what}: not true within {timeout} s")
        time.sleep(0.01)


def describe(f: Frame | None) -> str:
    if f is None:
        return "connection closed"
    return f"{command_name(f.command)} sid={f.stream_id} data={f.data[:60]!r}"


# ---- a scripted client ------------------------------------------------------------------------


class RawClient:
    """One TLS connection to an anytls server, driven by hand from ONE thread.

    (OpenSSL forbids reading and writing one TLS connection from two threads at once; the
    package itself goes through net.tls.ThreadSafeTLS for that. A caller that needs traffic
    both ways sends and reads in turns.)

    ``context`` defaults to no certificate verification; ``server_hostname`` is the SNI (and
    the name verified, when the context verifies).
    """

    def __init__(self, address: tuple[str, int], *, context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None,
                 connect_timeout: float = DEFAULT_TIMEOUT) -> None:
        raw = socket.create_connection(address, timeout=connect_timeout)
        set_nodelay(raw)
        try:
            self.tls = (context or insecure_client_context()).wrap_socket(
                raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise
        self._decoder = FrameDecoder()
        self._eof = False
        #: every frame read so far, in order
        self.received: list[Frame] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.tls.close()

    def reset(self) -> None:
        """Abort the TCP connection with a RST (SO_LINGER 0), as a crashed peer would."""
        self.tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.tls.close()

    # ---- sending ----

    def send_raw(self, data: bytes) -> None:
        """Bytes exactly as given, in one TLS write (one record up to 16 KiB)."""
        self.tls.sendall(data)

    def send_auth(self, password: str, padding0: int = 0) -> None:
        """The authentication request: sha256(password), padding0 length, padding0 zeros."""
        self.send_raw(encode_auth(password_hash(password), padding0))

    def send_frame(self, command: int, stream_id: int = 0, data: bytes = b"") -> None:
        self.send_raw(frame(command, stream_id, data))

    def send_settings(self, version: int = 2, padding_md5: str | None = DEFAULT.md5,
                      client: str | None = "rawpeer/1") -> None:
        self.send_frame(Command.SETTINGS, 0,
                        ClientSettings(version, client, padding_md5).encode())

    def open_stream(self, stream_id: int, host: str, port: int) -> None:
        """cmdSYN, then cmdPSH with the target as SocksAddr, in one write (as clients do)."""
        addr = encode_socksaddr(SocksAddr(host, port))
        self.send_raw(frame(Command.SYN, stream_id) + frame(Command.PSH, stream_id, addr))

    def send_data(self, stream_id: int, data: bytes) -> None:
        """Stream data as cmdPSH frames of at most 65535 bytes each."""
        self.send_raw(encode_psh(stream_id, data))

    def fin(self, stream_id: int) -> None:
        self.send_frame(Command.FIN, stream_id)

    # ---- receiving ----

    def read_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Frame | None:
        """The next frame, or None once the connection is closed. TimeoutError if none came."""
        deadline = time.monotonic() + timeout
        while (f := self._decoder.next_frame()) is NEED_DATA:
            if self._eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame within {timeout} s")
            self.tls.settimeout(remaining)
            try:
                data = self.tls.recv(RECORD_READ_SIZE)
            except (socket.timeout, TimeoutError):
                raise TimeoutError(f"no frame within {timeout} s") from None
            except (ConnectionError, ssl.SSLError):
                data = b""  # a reset or a broken TLS stream: closed all the same
            if not data:
                self._eof = True
            self._decoder.feed(data)
        self.received.append(f)
        return f

    def read_until(self, done: Callable[[Frame], bool],
                   timeout: float = DEFAULT_TIMEOUT) -> tuple[list[Frame], str]:
        """Frames until one makes ``done`` true. Returns (frames read, how it ended): "done",
        "closed" (the connection ended first) or "timeout"."""
        deadline = time.monotonic() + timeout
        frames: list[Frame] = []
        while True:
            try:
                f = self.read_frame(max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                return frames, "timeout"
            if f is None:
                return frames, "closed"
            frames.append(f)
            if done(f):
                return frames, "done"

    def expect(self, command: Command, *, sid: int | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> Frame:
        """The next frame must be ``command`` (on stream ``sid`` if given); returns it."""
        try:
            f = self.read_frame(timeout)
        except TimeoutError:
            raise ExpectationFailed(f"expected {command.name}, got nothing within {timeout} s")
        if f is None or f.command != command or (sid is not None and f.stream_id != sid):
            want = command.name + ("" if sid is None else f" sid={sid}")
            raise ExpectationFailed(f"expected {want}, got {describe(f)}")
        return f

    def recv_data(self, stream_id: int, n: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Exactly ``n`` bytes of cmdPSH data on ``stream_id``; any other frame fails."""
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        got = 0
        while got < n:
            remaining = deadline - time.monotonic()
            try:
                f = self.read_frame(max(remaining, 0.0))
            except TimeoutError:
                raise ExpectationFailed(f"sid {stream_id}: {got} of {n} bytes within {timeout} s")
            if f is None or f.command != Command.PSH or f.stream_id != stream_id:
                raise ExpectationFailed(f"expected PSH sid={stream_id}, got {describe(f)}")
            parts.append(f.data)
            got += len(f.data)
        data = b"".join(parts)
        if len(data) != n:
            raise ExpectationFailed(f"sid {stream_id}: {len(data)} bytes, expected {n}")
        return data

    def nothing_within(self, timeout: float) -> bool:
        """True if no frame arrives (and the connection stays open) for ``timeout`` seconds."""
        try:
            f = self.read_frame(timeout)
        except TimeoutError:
            return True
        if f is not None:
            raise ExpectationFailed(f"expected silence, got {describe(f)}")
        return False

    def closed_within(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """True if the server closes the connection within ``timeout``. Frames that arrive
        first are kept in ``received``, so a caller can check there were none."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.read_frame(max(deadline - time.monotonic(), 0.0)) is None:
                    return True
            except TimeoutError:
                return False

    def recv_raw_until_closed(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Every byte until the server closes (for a non-anytls reply such as a fallback's)."""
        deadline = time.monotonic() + timeout
        chunks = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExpectationFailed(f"connection still open after {timeout} s")
            self.tls.settimeout(remaining)
            try:
                data = self.tls.recv(RECORD_READ_SIZE)
            except (socket.timeout, TimeoutError):
                continue
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def connect_v2(address: tuple[str, int], password: str, *, version: int = 2) -> RawClient:
    """A RawClient that has authenticated and had its Settings answered (v >= 2 servers)."""
    peer = RawClient(address)
    try:
        peer.send_auth(password)
        peer.send_settings(version=version)
        peer.expect(Command.SERVER_SETTINGS)
    except BaseException:
        peer.close()
        raise
    return peer


#: What each scripted client version puts in cmdSettings (the keys in the order it sends them).
#: Version 2 copies Go: its keys come out of a map, so in no fixed order; this one puts
#: ``padding-md5`` first to exercise a server's parser.
_SETTINGS_STYLE: dict[int, Callable[[str], dict[str, str]]] = {
    1: lambda md5: {"v": "1", "client": "scripted-v1/0.0.1", "padding-md5": md5},
    2: lambda md5: {"padding-md5": md5, "v": "2", "client": "scripted-v2/0.0.8"},
    3: lambda md5: {"v": "3", "client": "scripted-v3/0.3.2", "padding-md5": md5},
}

#: Commands that exist only since version 2 and that a server sends (a v1 client never sees them).
_V2_SERVER_COMMANDS = frozenset({Command.SYNACK, Command.SERVER_SETTINGS, Command.HEART_REQUEST,
                                 Command.HEART_RESPONSE})


class ScriptedClient(RawClient):
    """A client of protocol version 1, 2 or 3, scripted as the spec's "Protocol Version 2" says.

        with ScriptedClient(address, password, version=1) as peer:
            peer.start()                   # auth + Settings v=1; expects no ServerSettings
            peer.open(1, *target)          # SYN + address; expects no SYNACK (version 1)
            peer.send_data(1, b"x"); peer.recv_data(1, 1)

    ``start`` returns the server's version (None when it sent no cmdServerSettings);
    ``features`` is what this session may then use. A version-1 client fails on any frame that
    only version 2 defines (it would not know it); a version-2/3 client that hears no
    cmdServerSettings runs version-1 rules, as the spec's "v1 server + v2 client" says.
    """

    def __init__(self, address: tuple[str, int], password: str, version: int, *,
                 padding_md5: str = DEFAULT.md5, **tls) -> None:
        if version not in _SETTINGS_STYLE:
            raise ValueError(f"no scripted client for version {version}")
        super().__init__(address, **tls)
        self.password = password
        self.version = version
        self.padding_md5 = padding_md5
        #: the server's cmdServerSettings version; None until (unless) one arrives
        self.server_version: int | None = None
        #: the raw scheme of a cmdUpdatePaddingScheme the server sent, if any
        self.padding_update: bytes | None = None

    @property
    def features(self) -> Features:
        if self.version < 2 or self.server_version is None:
            return Features(1)
        return Features(min(self.version, self.server_version))

    def read_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Frame | None:
        f = super().read_frame(timeout)
        if f is not None and self.version < 2 and f.command in _V2_SERVER_COMMANDS:
            raise ExpectationFailed(f"a version-1 client got {describe(f)}")
        return f

    def start(self, settings_wait: float = DEFAULT_TIMEOUT) -> int | None:
        """Authenticate and send cmdSettings; a version ≥ 2 client then waits up to
        ``settings_wait`` for cmdServerSettings (skipping a cmdUpdatePaddingScheme first)."""
        self.send_auth(self.password, padding0=30)  # the default scheme's line 0
        style = _SETTINGS_STYLE[self.version](self.padding_md5)
        self.send_frame(Command.SETTINGS, 0,
                        "\n".join(f"{k}={v}" for k, v in style.items()).encode())
        if self.version < 2:
            return None
        frames, how = self.read_until(lambda f: f.command != Command.UPDATE_PADDING_SCHEME,
                                      settings_wait)
        for f in frames:
            if f.command == Command.UPDATE_PADDING_SCHEME:
                self.padding_update = f.data
            elif f.command == Command.SERVER_SETTINGS:
                self.server_version = ServerSettings.decode(f.data).version
            else:
                raise ExpectationFailed(f"expected SERVER_SETTINGS, got {describe(f)}")
        if how == "closed":
            raise ExpectationFailed("the server closed the session after cmdSettings")
        return self.server_version

    def open(self, stream_id: int, host: str, port: int,
             timeout: float = DEFAULT_TIMEOUT) -> str | None:
        """Open a stream. With version-2 features on, wait for its cmdSYNACK and return its
        error text (None on success); a version-1 session expects no answer."""
        self.open_stream(stream_id, host, port)
        if not self.features.synack:
            return None
        synack = self.expect(Command.SYNACK, sid=stream_id, timeout=timeout)
        return synack.data.decode("utf-8", "replace") if synack.data else None


# ---- a scripted server ------------------------------------------------------------------------


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
