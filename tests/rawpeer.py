"""Scripted raw anytls peers for tests: a client and a server driven frame by frame.

The real Client and Server hide the protocol behind streams and sessions. These two peers show
it: a test writes exactly the bytes it wants (a correct authentication, a SYN before Settings,
garbage, data on a command that must carry none) and reads exactly the frames that come back,
each read with a deadline, so a missing answer fails the test instead of hanging it.

    peer = RawClient(server.address)
    peer.send_auth("password")             # sha256(password) + padding0 length + padding0
    peer.send_settings(version=2)          # cmdSettings v=2 client=... padding-md5=...
    peer.expect(Command.SERVER_SETTINGS)   # the server answers v >= 2 clients at once
    peer.open_stream(1, "127.0.0.1", port) # cmdSYN + cmdPSH(SocksAddr) in one write
    peer.expect(Command.SYNACK, sid=1)     # the outbound dial succeeded (empty data)
    peer.send_data(1, b"ping")
    assert peer.recv_data(1, 4) == b"ping"
    peer.close()

RawServer is the other side: TLS, the authentication check, and a small fixed script (answer
cmdSettings with cmdServerSettings, acknowledge SYNs, echo stream data) that a test can bend
(e.g. never acknowledge sid 2) to see how the client copes. Both record what they saw.

Frames are built here with the bare header struct, not frame.encode_frame, so a test can send
what the encoder (rightly) refuses to produce.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from anytls_ref.auth import AUTH_OVERHEAD, check_auth, encode_auth, password_hash
from anytls_ref.errors import AuthenticationError
from anytls_ref.frame import FRAME_HEADER, NEED_DATA, Command, Frame, FrameDecoder, encode_psh
from anytls_ref.padding import DEFAULT
from anytls_ref.settings import ClientSettings, ServerSettings
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr
from anytls_ref.net.tls import server_context

#: How long a single expectation waits unless told otherwise.
DEFAULT_TIMEOUT = 3.0


def frame(command: int, stream_id: int = 0, data: bytes = b"") -> bytes:
    """One frame, any command, any data (even where the spec forbids data)."""
    return FRAME_HEADER.pack(command, stream_id, len(data)) + data


def insecure_client_context() -> ssl.SSLContext:
    """Tests talk to a fresh self-signed certificate: no verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def eventually(condition: Callable[[], object], timeout: float, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; fail the test if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not true within {timeout} s")
        time.sleep(0.01)


def describe(f: Frame | None) -> str:
    if f is None:
        return "connection closed"
    name = f.command.name if isinstance(f.command, Command) else f"CMD{f.command}"
    return f"{name} sid={f.stream_id} data={f.data[:60]!r}"


class RawClient:
    """One TLS connection to an anytls server, driven by hand from ONE thread.

    (OpenSSL forbids reading and writing one TLS connection from two threads at once; the
    package itself goes through net.tls.ThreadSafeTLS for that. A test that needs traffic
    both ways sends and reads in turns.)
    """

    def __init__(self, address: tuple[str, int], *, connect_timeout: float = DEFAULT_TIMEOUT):
        raw = socket.create_connection(address, timeout=connect_timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.tls = insecure_client_context().wrap_socket(raw)
        except BaseException:
            raw.close()
            raise
        self._decoder = FrameDecoder()
        self._eof = False
        #: every frame read so far, in order
        self.received: list[Frame] = []

    def __enter__(self) -> RawClient:
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
                data = self.tls.recv(1 << 16)
            except (socket.timeout, TimeoutError):
                raise TimeoutError(f"no frame within {timeout} s") from None
            except (ConnectionError, ssl.SSLError):
                data = b""  # a reset or a broken TLS stream: closed all the same
            if not data:
                self._eof = True
            self._decoder.feed(data)
        self.received.append(f)
        return f

    def expect(self, command: Command, *, sid: int | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> Frame:
        """The next frame must be ``command`` (on stream ``sid`` if given); returns it."""
        try:
            f = self.read_frame(timeout)
        except TimeoutError:
            raise AssertionError(f"expected {command.name}, got nothing within {timeout} s")
        if f is None or f.command != command or (sid is not None and f.stream_id != sid):
            want = command.name + ("" if sid is None else f" sid={sid}")
            raise AssertionError(f"expected {want}, got {describe(f)}")
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
                raise AssertionError(f"sid {stream_id}: {got} of {n} bytes within {timeout} s")
            if f is None or f.command != Command.PSH or f.stream_id != stream_id:
                raise AssertionError(f"expected PSH sid={stream_id}, got {describe(f)}")
            parts.append(f.data)
            got += len(f.data)
        data = b"".join(parts)
        if len(data) != n:
            raise AssertionError(f"sid {stream_id}: {len(data)} bytes, expected {n}")
        return data

    def nothing_within(self, timeout: float) -> bool:
        """True if no frame arrives (and the connection stays open) for ``timeout`` seconds."""
        try:
            f = self.read_frame(timeout)
        except TimeoutError:
            return True
        if f is not None:
            raise AssertionError(f"expected silence, got {describe(f)}")
        return False

    def closed_within(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """True if the server closes the connection within ``timeout``. Frames that arrive
        first are kept in ``received``, so a test can check there were none."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.read_frame(max(deadline - time.monotonic(), 0.0)) is None:
                    return True
            except TimeoutError:
                return False

    def recv_raw_until_closed(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Every byte until the server closes (for a non-anytls reply such as the fallback's)."""
        deadline = time.monotonic() + timeout
        chunks = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout} s")
            self.tls.settimeout(remaining)
            try:
                data = self.tls.recv(1 << 16)
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


# ---- a scripted server ------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something a RawServer connection saw: ``what`` is "auth", a command name, or "closed"."""

    time: float
    conn: int
    what: str
    stream_id: int = 0
    data: bytes = b""


class RawServer:
    """A minimal anytls server with a fixed, bendable script, for testing clients.

    Per connection: check the authentication; answer cmdSettings with cmdServerSettings
    ``v=version``; answer cmdSYN with an empty cmdSYNACK when ``synack(sid)`` says so (and stay
    silent otherwise); echo stream data back, dropping the SocksAddr at its start. No target is
    dialled. Every frame is recorded in ``events`` with its arrival time.
    """

    def __init__(self, password: str, *, version: int = 2,
                 synack: Callable[[int], bool] = lambda sid: True) -> None:
        self._hash = password_hash(password)
        self._version = version
        self._synack = synack
        self._context = server_context()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._socks: set[socket.socket] = set()
        self._closing = threading.Event()
        self._conns = 0
        self.events: list[Event] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, name="rawserver")
        self._accept_thread.start()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def find(self, what: str, stream_id: int | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self.events
                    if e.what == what and (stream_id is None or e.stream_id == stream_id)]

    def _record(self, conn: int, what: str, stream_id: int = 0, data: bytes = b"") -> None:
        with self._lock:
            self.events.append(Event(time.monotonic(), conn, what, stream_id, data))

    def _accept_loop(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closing.is_set():
                    raw.close()
                    return
                self._conns += 1
                thread = threading.Thread(target=self._serve, args=(raw, self._conns),
                                          name=f"rawserver-{self._conns}")
                self._threads.add(thread)
                self._socks.add(raw)
            thread.start()

    def _serve(self, raw: socket.socket, conn: int) -> None:
        tls = None
        try:
            raw.settimeout(DEFAULT_TIMEOUT)
            tls = self._context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
            with self._lock:
                self._socks.add(tls)
            first = tls.recv(1 << 14)
            request = check_auth(first, self._hash)
            if request.padding0_missing:
                return  # our clients send the whole request in one record
            self._record(conn, "auth", data=first[:AUTH_OVERHEAD + request.padding0_length])
            self._session(tls, conn, request.rest)
        except (OSError, AuthenticationError):
            pass
        finally:
            self._record(conn, "closed")
            with self._lock:
                self._socks.discard(raw)
                if tls is not None:
                    self._socks.discard(tls)
                self._threads.discard(threading.current_thread())
            (tls or raw).close()

    def _session(self, tls: ssl.SSLSocket, conn: int, initial: bytes) -> None:
        decoder = FrameDecoder()
        decoder.feed(initial)
        awaiting_address: set[int] = set()
        while True:
            while (f := decoder.next_frame()) is not NEED_DATA:
                name = f.command.name if isinstance(f.command, Command) else f"CMD{f.command}"
                self._record(conn, name, f.stream_id, f.data)
                if f.command == Command.SETTINGS:
                    tls.sendall(frame(Command.SERVER_SETTINGS, 0,
                                      ServerSettings(self._version).encode()))
                elif f.command == Command.SYN:
                    awaiting_address.add(f.stream_id)
                    if self._synack(f.stream_id):
                        tls.sendall(frame(Command.SYNACK, f.stream_id))
                elif f.command == Command.PSH:
                    data = f.data
                    if f.stream_id in awaiting_address:
                        awaiting_address.discard(f.stream_id)
                        result = decode_socksaddr(data)
                        data = b"" if result is NEED_DATA else data[result[1]:]
                    if data:
                        tls.sendall(encode_psh(f.stream_id, data))
                elif f.command == Command.HEART_REQUEST:
                    tls.sendall(frame(Command.HEART_RESPONSE, f.stream_id))
            data = tls.recv(1 << 16)
            if not data:
                return
            decoder.feed(data)

    def close(self) -> None:
        self._closing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._accept_thread.join()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return
            for thread in threads:
                thread.join()
