"""Session: one authenticated TLS connection carrying frames, for either role.

It owns the socket, the write lock, the streams of this connection and the rules object
(anytls_ref.rules) that decides what each received frame means. ``run_reader`` is the reader
loop; the role subclasses (ServerSession in server.py, ClientSession in client.py) add what
only they do with the rules' effects.

The reader hands every frame to the rules but one kind: a cmdPSH with data for an open stream
goes straight to its stream (``_fast_psh``). That is the bulk of all frames, and building an
effect for each costs more than the data copy; rules.TABLE's (open stream, PSH) cell says the
same thing, and tests/test_fast_path.py checks that the two paths agree.
"""

from __future__ import annotations

import logging
import mmap
import select
import ssl
import threading

from ..effects import CloseSession, Note, Send, StreamClosed, StreamData, StreamFinished
from ..errors import AnyTLSError, ConnectionClosed, Reason
from ..frame import (FRAME_HEADER, HEADER_SIZE, MAX_DATA, NEED_DATA, Command, Frame, FrameDecoder,
                     encode_psh, frame_psh_in_place)
from ..padding import Padder
from ..rules import ClientRules, ServerRules
from .sockutil import shutdown_quietly
from .stream import Stream
from .tls import ThreadSafeTLS
from .trace import Tracer

log = logging.getLogger("anytls_ref.session")

#: A cmdPSH with at least this much data still to come is read straight into place (see
#: Session._next_frame); smaller ones go through the decoder.
DIRECT_READ_MIN = 1 << 14


#: How much of the peer's first read a session keeps (client diagnoses: diagnose.py).
FIRST_BYTES_KEPT = 64
#: Session.probe_peer's frame: cmdWaste with no data.
_WASTE_PROBE = FRAME_HEADER.pack(Command.WASTE, 0, 0)


class SessionEnded(Exception):
    """Raised inside the reader loop when the rules say the session is over (CloseSession)."""

    def __init__(self, text: str, reason: Reason) -> None:
        super().__init__(text)
        self.reason = reason


class Session:
    """Frames over one TLS connection. Subclasses implement ``on_effect`` and ``on_closed``."""

    def __init__(
        self,
        sock: ssl.SSLSocket,
        rules: ServerRules | ClientRules,
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
        #: the start of the first read from the peer (what a silent or foreign peer said)
        self.first_bytes: bytes | None = None

    # ---- writing ----

    def write(self, data: bytes | memoryview) -> None:
        """One write to TLS: shaped into records by the padder while it is active (client)."""
        with self._write_lock:
            if self._sock_closed:
                raise ConnectionClosed("session is closed")
            try:
                if self.padder is not None and self.padder.active:
                    packet = self.padder.packet
                    records = self.padder.records(bytes(data))
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

    def probe_peer(self) -> None:
        """Write an empty cmdWaste if no other write is going on and the socket has room: a peer
        whose socket is gone (a killed process) answers it with a reset. The reader calls this
        while it is stuck writing into a stream's full sink (Stream._send_waiting), to notice a
        dead peer it cannot read from. ("After receiving cmdWaste, either party should read its
        data completely and silently discard it.")"""
        if self._write_lock.locked() or self._sock_closed:
            return  # a writer is at work: a dead peer fails its write
        poller = select.poll()
        poller.register(self.sock, select.POLLOUT)
        if not poller.poll(0):
            return  # no room: the peer is not reading, and this write could block
        try:
            self.write(_WASTE_PROBE)
        except ConnectionClosed:
            pass  # the write failed: write() shut the session down

    def send_data(self, stream_id: int, data: bytes) -> None:
        self.write(encode_psh(stream_id, data))

    def send_in_place(self, stream_id: int, buf: bytearray | memoryview, length: int) -> None:
        """Send ``buf[HEADER_SIZE:HEADER_SIZE+length]`` as one cmdPSH; ``buf[:HEADER_SIZE]`` is
        free room for the header (see frame_psh_in_place)."""
        self.write(frame_psh_in_place(buf, stream_id, length))

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

    def stream_finished(self, stream: Stream) -> None:
        """Client: we are done sending on ``stream`` (its application's EOF): our FIN goes
        out, and the stream stays for what the server still sends (decisions.md D40)."""
        with self._state_lock:
            effects = self.rules.finish_stream(stream.stream_id)
        self._apply_all(effects, quiet=True)

    # ---- reading ----

    def run_reader(self, initial: bytes = b"") -> None:
        """Read and handle frames until the connection ends; always ends in ``_finish``."""
        decoder = FrameDecoder()
        decoder.feed(initial)
        # one frame's room, reused: the read buffer, and where a large cmdPSH's data is gathered;
        # anonymous memory is resident only once written, so a quiet session does not cost 64 KiB
        buf = memoryview(mmap.mmap(-1, HEADER_SIZE + MAX_DATA))
        reason: BaseException = ConnectionClosed("connection closed by peer")
        try:
            while (frame := self._next_frame(decoder, buf)) is not None:
                self.frames_in += 1
                if self.tracer:
                    self.tracer.frame_in(self.label, frame)
                if self._fast_psh(frame):
                    continue
                with self._state_lock:
                    effects = self.rules.receive(frame)
                self._apply_all(effects)
        except SessionEnded as exc:
            reason = exc
        except (OSError, AnyTLSError) as exc:
            reason = exc if self.error is None else self.error
        finally:
            self._finish(reason)

    def _fast_psh(self, frame: Frame) -> bool:
        """The one place the net layer acts before the rules: a cmdPSH for an open stream goes
        to the stream directly (True), as rules.TABLE's (open stream, PSH) cell would have it
        (StreamData; nothing for an empty PSH, D21). Anything else is for the rules (False)."""
        if frame.command != Command.PSH:
            return False
        stream = self.streams.get(frame.stream_id)
        if stream is None:
            return False  # no such stream: the rules decide (dropped, or rejected: D31)
        if frame.data:
            stream.feed(frame.data)
        return True

    def _next_frame(self, decoder: FrameDecoder, buf: memoryview) -> Frame | None:
        """The next frame; None at EOF.

        ``buf`` (one frame's room) is the read buffer, and where the data of a large cmdPSH is
        gathered: TLS decrypts straight into it, instead of every byte being copied into the
        decoder and out again. Such a frame's data is a view of ``buf``, valid until the next
        call (Stream.feed copies what it keeps).
        """
        while (frame := decoder.next_frame()) is NEED_DATA:
            partial = decoder.partial_frame()
            if partial is not None:
                command, stream_id, length, have = partial
                if command == Command.PSH and length - have >= DIRECT_READ_MIN:
                    # begun inside an earlier read: its first bytes move in front of the rest
                    data = buf[HEADER_SIZE : HEADER_SIZE + length]
                    return self._read_rest(stream_id, data, decoder.take_partial(data))
            n = self.tls.recv_into(buf)
            if self.first_bytes is None:
                self.first_bytes = bytes(buf[:min(n, FIRST_BYTES_KEPT)])
            if n == 0:
                return None
            if decoder.buffered == 0 and n >= HEADER_SIZE:
                command, stream_id, length = FRAME_HEADER.unpack_from(buf)
                if command == Command.PSH and HEADER_SIZE + length - n >= DIRECT_READ_MIN:
                    # a large frame starts this read (as one does when the peer sends each in
                    # TLS writes of its own): its first bytes are in place already
                    data = buf[HEADER_SIZE : HEADER_SIZE + length]
                    return self._read_rest(stream_id, data, n - HEADER_SIZE)
            decoder.feed(buf[:n])
        return frame

    def _read_rest(self, stream_id: int, data: memoryview, have: int) -> Frame:
        """Fill ``data[have:]`` from TLS: the rest of a large cmdPSH's data."""
        if have + self.tls.recv_into_full(data[have:]) < len(data):
            raise ConnectionClosed("connection closed inside a frame")
        return Frame(Command.PSH, stream_id, data)

    def _apply_all(self, effects: list, *, quiet: bool = False) -> None:
        for effect in effects:
            try:
                self._apply(effect)
            except ConnectionClosed:
                if not quiet:
                    raise

    def _apply(self, effect) -> None:
        if isinstance(effect, Send):
            self.write(effect.frame)
        elif isinstance(effect, StreamData):
            stream = self.streams.get(effect.stream_id)
            if stream is not None:
                stream.feed(effect.data)
        elif isinstance(effect, StreamClosed):
            with self._state_lock:
                stream = self.streams.pop(effect.stream_id, None)
            self.on_stream_gone()  # before the stream's user can hear of its end
            if stream is not None:
                stream.peer_closed()
        elif isinstance(effect, StreamFinished):
            stream = self.streams.get(effect.stream_id)
            if stream is not None:
                stream.peer_finished()
        elif isinstance(effect, CloseSession):
            # [SESS-ALERT-LOG-CLOSE] "The client needs to read it and print it to the log, then
            # both parties close the session." (the reader ends, _finish closes the socket)
            if effect.alert is not None:
                log.warning("%s: %s", self.label, effect.text)
            raise SessionEnded(effect.text, effect.reason)
        elif isinstance(effect, Note):
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
        for stream in tuple(self.streams.values()):
            # the reader may be blocked writing into a stream's socket (or waiting for room in
            # its buffer), not in recv: end the streams too, which wakes it
            stream.session_failed(self.error, self.end_reason)
        shutdown_quietly(self.sock)  # wakes a thread blocked in recv on this socket

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
            stream.session_failed(self.error, self.end_reason)
        with self._write_lock:
            self._sock_closed = True
            shutdown_quietly(self.sock)
            self.sock.close()
        self.on_closed()

    @property
    def end_reason(self) -> Reason:
        """Why the session ended, for the streams it takes down: the rules' reason when they
        closed it (an Alert, a rejected client), else SESSION_CLOSED."""
        if isinstance(self.error, SessionEnded):
            return self.error.reason
        return Reason.SESSION_CLOSED

    def on_stream_gone(self) -> None:
        """Subclass hook: the peer ended a stream (cmdFIN) and it is out of ``streams``."""

    def on_closed(self) -> None:
        """Subclass hook, called once by the reader thread after the socket is closed."""
