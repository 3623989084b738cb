"""Session: one authenticated TLS connection carrying frames, for either role.

It owns the socket, the write lock, the streams of this connection and the rules object
(anytls_ref.session) that decides what each received frame means. ``run_reader`` is the reader
loop; the role subclasses (ServerSession in server.py, ClientSession in client.py) add what
only they do with the rules' effects.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading

from .. import session as rules_mod
from ..errors import AnyTLSError, ConnectionClosed
from ..frame import NEED_DATA, Command, FrameDecoder, command_name, encode_psh
from ..padding import Padder
from .stream import Stream
from .tls import ThreadSafeTLS
from .trace import Tracer

log = logging.getLogger("anytls_ref.session")

#: Bytes asked of the TLS socket per read (a TLS record holds at most 16 KiB, a read can return
#: several buffered ones).
READ_SIZE = 1 << 18


class SessionEnded(Exception):
    """Raised inside the reader loop when the rules say the session is over."""


class Session:
    """Frames over one TLS connection. Subclasses implement ``on_effect`` and ``on_closed``."""

    def __init__(
        self,
        sock: ssl.SSLSocket,
        rules: rules_mod.ServerRules | rules_mod.ClientRules,
        *,
        label: str,
        padder: Padder | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.sock = sock
        self.rules = rules
        self.label = label
        self.padder = padder
        self.tracer = tracer
        self.streams: dict[int, Stream] = {}
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()  # guards rules and streams
        #: the reader and a writer use the socket at once: only through this (see its doc)
        self.tls = ThreadSafeTLS(sock)
        self._sock_closed = False
        self.closed = threading.Event()
        #: why the session ended (an exception), once it has
        self.error: BaseException | None = None
        self.frames_in = 0
        self.bytes_written = 0

    # ---- writing ----

    def write(self, data: bytes) -> None:
        """One write to TLS: shaped into records by the padder while it is active (client)."""
        with self._write_lock:
            if self._sock_closed:
                raise ConnectionClosed("session is closed")
            try:
                if self.padder is not None and self.padder.active:
                    packet = self.padder.packet
                    records = self.padder.records(data)
                    if self.tracer:
                        self.tracer.records(self.label, packet, records)
                    for record in records:
                        self.tls.sendall(record)
                else:
                    if self.tracer:
                        self.tracer.records(self.label, None, [data])
                    self.tls.sendall(data)
                self.bytes_written += len(data)
            except OSError as exc:
                self.shutdown(exc)
                raise ConnectionClosed(f"write failed: {exc}") from exc

    def send_data(self, stream_id: int, data: bytes) -> None:
        self.write(encode_psh(stream_id, data))

    def stream_closed(self, stream: Stream) -> None:
        """A stream was closed locally: tell the rules (FIN unless the peer closed it first)."""
        with self._state_lock:
            if self.streams.get(stream.stream_id) is not stream:
                # the peer closed it first (FIN), or it failed to open; either way its id may
                # already belong to a new stream (a sid reused after its FIN), which must not
                # be closed in its place
                return
            del self.streams[stream.stream_id]
            effects = self.rules.close_stream(stream.stream_id)
        self._apply_all(effects, quiet=True)

    # ---- reading ----

    def run_reader(self, initial: bytes = b"") -> None:
        """Read and handle frames until the connection ends; always ends in ``_finish``."""
        decoder = FrameDecoder()
        decoder.feed(initial)
        buf = bytearray(READ_SIZE)
        view = memoryview(buf)
        reason: BaseException = ConnectionClosed("connection closed by peer")
        try:
            while True:
                while (frame := decoder.next_frame()) is not NEED_DATA:
                    self.frames_in += 1
                    if self.tracer:
                        self.tracer.frame_in(self.label, frame)
                    if frame.command == Command.PSH:
                        # the hot path: data for a stream, no effect objects
                        stream = self.streams.get(frame.stream_id)
                        if stream is not None:
                            if frame.data:  # an empty PSH carries nothing (D21)
                                stream.feed(frame.data)
                        elif self.tracer is None:
                            log.debug("%s: PSH for unknown stream %d dropped", self.label,
                                      frame.stream_id)
                        continue
                    with self._state_lock:
                        effects = self.rules.receive(frame)
                    self._apply_all(effects)
                n = self.tls.recv_into(view)
                if n == 0:
                    break
                decoder.feed(view[:n])
        except SessionEnded as exc:
            reason = exc
        except (OSError, AnyTLSError) as exc:
            reason = exc if self.error is None else self.error
        finally:
            self._finish(reason)

    def _apply_all(self, effects: list, *, quiet: bool = False) -> None:
        for effect in effects:
            try:
                self._apply(effect)
            except ConnectionClosed:
                if not quiet:
                    raise

    def _apply(self, effect) -> None:
        if isinstance(effect, rules_mod.Send):
            self.write(effect.frame)
        elif isinstance(effect, rules_mod.StreamData):
            stream = self.streams.get(effect.stream_id)
            if stream is not None:
                stream.feed(effect.data)
        elif isinstance(effect, rules_mod.StreamClosed):
            with self._state_lock:
                stream = self.streams.pop(effect.stream_id, None)
            if stream is not None:
                stream.peer_closed()
        elif isinstance(effect, rules_mod.CloseSession):
            # [SESS-ALERT-LOG-CLOSE] "The client needs to read it and print it to the log, then
            # both parties close the session." (the reader ends, _finish closes the socket)
            if effect.alert is not None:
                log.warning("%s: %s", self.label, effect.reason)
            raise SessionEnded(effect.reason)
        elif isinstance(effect, rules_mod.Note):
            log.debug("%s: %s", self.label, effect.text)
        else:
            self.on_effect(effect)

    def on_effect(self, effect) -> None:  # pragma: no cover - subclasses handle their effects
        log.debug("%s: unhandled effect %r", self.label, effect)

    # ---- closing ----

    def shutdown(self, reason: BaseException | str = "closed") -> None:
        """Stop the session from any thread: wakes the reader, which then cleans up."""
        if isinstance(reason, str):
            reason = ConnectionClosed(reason)
        if self.error is None:
            self.error = reason
        self.closed.set()
        try:
            # the plain socket's shutdown (not SSLSocket's, which drops its TLS object under a
            # thread that may be reading): wakes a thread blocked in recv on this socket
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def _finish(self, reason: BaseException) -> None:
        """Reader-thread cleanup: fail every stream, close the socket, tell the subclass."""
        if self.error is None:
            self.error = reason
        self.closed.set()
        with self._state_lock:
            self.rules.closed()
            streams = list(self.streams.values())
            self.streams.clear()
        for stream in streams:
            stream.session_failed(self.error)
        with self._write_lock:
            self._sock_closed = True
            try:
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        self.on_closed()

    def on_closed(self) -> None:
        """Subclass hook, called once by the reader thread after the socket is closed."""
