"""Scripted raw anytls clients, driven frame by frame.

The real Client hides the protocol behind streams and sessions. These clients show it: the
caller writes exactly the bytes it wants (a correct authentication, a SYN before Settings,
garbage, data on a command that must carry none) and reads exactly the frames that come back,
each read with a deadline, so a missing answer is reported instead of hanging. Tests use them,
and so does ``anytls-ref probe server``, which is why they live in the package.

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
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable

from ..auth import encode_auth, password_hash
from ..frame import NEED_DATA, Command, Frame, FrameDecoder, encode_psh
from ..net.sockutil import set_nodelay
from ..net.trace import describe
from ..padding import DEFAULT
from ..settings import ClientSettings, ServerSettings
from ..socksaddr import SocksAddr, encode_socksaddr
from ..version import Features
from .scripting import DEFAULT_TIMEOUT, RECORD_READ_SIZE, ExpectationFailed, frame


def insecure_client_context() -> ssl.SSLContext:
    """For a fresh self-signed certificate: no verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def what_came(f: Frame | None) -> str:
    """A frame read, or the end of the connection, for an expectation's message."""
    return "connection closed" if f is None else describe(f)


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

    def half_close(self) -> None:
        """Send EOF (TCP FIN) and go on reading: the plain socket's SHUT_WR, no close_notify
        (SSLSocket.shutdown would drop the TLS state that reading the answer still needs)."""
        socket.socket.shutdown(self.tls, socket.SHUT_WR)

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

    def open_confirmed(self, stream_id: int, host: str, port: int,
                       timeout: float = DEFAULT_TIMEOUT) -> Frame:
        """open_stream, then the server's cmdSYNACK for it must be the next frame; returns it
        (empty data: the dial succeeded; else the dial's error text)."""
        self.open_stream(stream_id, host, port)
        return self.expect(Command.SYNACK, sid=stream_id, timeout=timeout)

    def send_data(self, stream_id: int, data: bytes) -> None:
        """Stream data as cmdPSH frames of at most 65535 bytes each."""
        self.send_raw(encode_psh(stream_id, data))

    def fin(self, stream_id: int) -> None:
        self.send_frame(Command.FIN, stream_id)

    # ---- receiving ----

    def _recv_record(self, deadline: float) -> bytes | None:
        """The plaintext of the next TLS record (b"" once the connection is closed), or None
        if none came before ``deadline`` (time.monotonic())."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.tls.settimeout(remaining)
        try:
            return self.tls.recv(RECORD_READ_SIZE)
        except (socket.timeout, TimeoutError):
            return None
        except (ConnectionError, ssl.SSLError):
            return b""  # a reset or a broken TLS stream: closed all the same

    def read_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Frame | None:
        """The next frame, or None once the connection is closed. TimeoutError if none came."""
        deadline = time.monotonic() + timeout
        while (f := self._decoder.next_frame()) is NEED_DATA:
            if self._eof:
                return None
            data = self._recv_record(deadline)
            if data is None:
                raise TimeoutError(f"no frame within {timeout} s")
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
            raise ExpectationFailed(f"expected {want}, got {what_came(f)}")
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
                raise ExpectationFailed(f"expected PSH sid={stream_id}, got {what_came(f)}")
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
            raise ExpectationFailed(f"expected silence, got {what_came(f)}")
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
            data = self._recv_record(deadline)
            if data is None:
                raise ExpectationFailed(f"connection still open after {timeout} s")
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
            raise ExpectationFailed(f"a version-1 client got {what_came(f)}")
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
                raise ExpectationFailed(f"expected SERVER_SETTINGS, got {what_came(f)}")
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
