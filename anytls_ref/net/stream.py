"""Stream: one anytls stream as a small socket-like object (recv / sendall / close).

The session's reader thread ``feed``s it the data of cmdPSH frames; the thread that serves the
stream ``recv``s from it. The buffer is bounded (STREAM_BUFFER_LIMIT): when it is full the reader
waits, so a slow consumer pushes back on the peer through TCP, as Go's synchronous pipe does,
and memory per stream stays bounded.

A relay skips the buffer: ``attach_sink(sock)`` makes the reader write each cmdPSH's data
straight into the socket (a blocking sendall, so back-pressure is the socket's send buffer,
again like Go's synchronous pipe) and shut the socket down when the stream ends. In Python a
hand-off between two threads per frame costs more than the copy it moves (GIL and futex
round trips), so the relay's receive direction runs on the session reader.

A reader blocked writing into a sink that does not drain must still notice that its own peer
is gone (a killed client, a crashed server): while it waits it also watches the session
socket, and every PEER_PROBE_INTERVAL seconds sends the peer an empty cmdWaste (a socket that
a killed process left behind answers it with a reset). A reset ends the wait at once; a peer
that closed cleanly leaves the sink ORPHAN_WRITE_TIMEOUT seconds to take more bytes. Then the
rest is dropped and the session, its threads and sockets are freed
(spec_notes/reliability.md).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from ..errors import ConnectionClosed, Reason, StreamOpenError
from ..version import OPENED, OpenPlan, OpenResult, Wait, open_outcome
from .sockutil import shutdown_quietly

if TYPE_CHECKING:
    from .session import Session

#: Most bytes a stream holds that its consumer has not read yet.
STREAM_BUFFER_LIMIT = 1 << 20
#: Once the session's peer has hung up, how long a sink that takes no bytes is waited for
#: before the rest of the stream is dropped (a slow target still gets what was received).
ORPHAN_WRITE_TIMEOUT = 5.0
#: While a sink write waits, how often the session's peer is probed with an empty cmdWaste.
PEER_PROBE_INTERVAL = 1.0
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)
_GONE = select.POLLERR | select.POLLHUP


class Stream:
    def __init__(self, session: Session, stream_id: int) -> None:
        self.session = session
        self.stream_id = stream_id
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._peer_closed = False  # the stream is over on the peer's side (cmdFIN)
        self._peer_finished = False  # server: the client is done sending (cmdFIN, half-close)
        self._finished = False  # client: we are done sending (our cmdFIN went out)
        self._closed = False  # closed on our side
        self._error: BaseException | None = None  # the session died
        #: client side: what the session has heard of the stream's opening (None: nothing yet)
        self.answer: OpenResult | None = None
        #: the relay's socket, once attached: the reader writes data straight into it
        self._sink: socket.socket | None = None
        self._sink_broken = False  # a write to the sink failed: the rest is dropped
        self.bytes_in = 0
        self.bytes_out = 0

    def __repr__(self) -> str:
        return f"<Stream {self.session.label} sid={self.stream_id}>"

    # ---- called by the session reader ----

    def feed(self, data: bytes | memoryview) -> None:
        """Data of a cmdPSH. A memoryview is only valid during the call (the reader reuses its
        buffer): kept data is copied."""
        if self._sink is None:  # set once, never unset: safe to look without the lock
            with self._cond:
                while (self._sink is None and self._buffered >= STREAM_BUFFER_LIMIT
                       and not (self._closed or self._error)):
                    self._cond.wait()
                if self._sink is None:
                    if self._closed or self._error:
                        return  # nobody will read it
                    self._chunks.append(bytes(data) if isinstance(data, memoryview) else data)
                    self._buffered += len(data)
                    if self.answer is None:
                        self.answer = OPENED  # data means the stream is open (v1 or early data)
                    self._cond.notify_all()
                    return
        self._write_sink(data)  # attached, perhaps while we waited for room

    def _write_sink(self, data: bytes | memoryview) -> None:
        if self._closed or self._error or self._sink_broken:
            return  # nobody will read it
        try:
            try:
                sent = self._sink.send(data, socket.MSG_DONTWAIT)  # the usual case: all of it
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                self._send_waiting(memoryview(data)[sent:])
        except OSError:
            # the local side is gone: drop the rest; shutting the socket down wakes the relay,
            # which closes the stream
            self._sink_broken = True
            self._shutdown_sink()
            return
        self.bytes_in += len(data)

    def _send_waiting(self, view: memoryview) -> None:
        """The rest of a sink write, waiting for room while watching the session's peer (see
        the module doc); TimeoutError once the peer is gone and the sink will not drain."""
        sink = self._sink
        peer_fd = self.session.sock.fileno()
        poller = select.poll()
        poller.register(sink, select.POLLOUT)
        if peer_fd >= 0:
            poller.register(peer_fd, _POLLRDHUP)  # POLLHUP and POLLERR come unasked
        orphaned_at = None
        while view:
            try:
                view = view[sink.send(view, socket.MSG_DONTWAIT):]
                if orphaned_at is not None:
                    orphaned_at = time.monotonic()  # progress restarts the clock
                continue
            except BlockingIOError:
                pass
            if orphaned_at is None:
                wait = PEER_PROBE_INTERVAL
            else:
                wait = orphaned_at + ORPHAN_WRITE_TIMEOUT - time.monotonic()
                if wait <= 0:
                    raise TimeoutError("the peer is gone and the sink takes no more data")
            events = poller.poll(wait * 1000)
            for fd, event in events:
                if fd == peer_fd and orphaned_at is None:
                    if event & _GONE:  # reset (or shut down here): nothing more will come
                        raise ConnectionResetError("the peer is gone")
                    orphaned_at = time.monotonic()  # it closed cleanly: the sink gets a while
                    poller.unregister(peer_fd)  # level-triggered: once is enough
            if not events and orphaned_at is None:
                self.session.probe_peer()

    def _shutdown_sink(self, how: int = socket.SHUT_RDWR) -> None:
        """When the stream ends, so does the attached socket (this also wakes the relay blocked
        in its recv); when the peer only finished sending, its EOF is passed on (SHUT_WR)."""
        if self._sink is not None:
            shutdown_quietly(self._sink, how)

    def peer_closed(self) -> None:
        with self._cond:
            self._peer_closed = True
            if self.answer is None:
                self.answer = OpenResult(Reason.STREAM_CLOSED, "stream closed by the server")
            self._cond.notify_all()
        self._shutdown_sink()

    def peer_finished(self) -> None:
        """Server: the client is done sending (cmdFIN); the target hears EOF, and what it still
        sends goes on (decisions.md D40)."""
        with self._cond:
            self._peer_finished = True
            self._cond.notify_all()
        self._shutdown_sink(socket.SHUT_WR)

    def session_failed(self, error: BaseException, reason: Reason) -> None:
        with self._cond:
            self._error = error
            if self.answer is None:
                self.answer = OpenResult(reason, f"session closed: {error}")
            self._cond.notify_all()
        self._shutdown_sink()

    def answered(self, result: OpenResult) -> None:
        """Client: the server's cmdSYNACK (the first answer counts)."""
        with self._cond:
            if self.answer is None:
                self.answer = result
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiters re-check their condition (e.g. the session learned the peer version)."""
        with self._cond:
            self._cond.notify_all()

    def attach_sink(self, sock: socket.socket) -> None:
        """From now on the session reader writes this stream's data straight into ``sock`` and
        shuts ``sock`` down when the stream ends (see the module doc). Data already buffered is
        written first, in order. ``recv`` is not to be used any more."""
        while True:
            with self._cond:
                if not self._chunks:
                    # nothing left in the buffer: from here on the reader writes (it cannot be
                    # inside feed's append now, we hold the lock)
                    self._sink = sock
                    ended = self._peer_closed or self._closed or self._error is not None
                    self._cond.notify_all()  # a reader waiting for room writes directly now
                    break
                chunk = self._chunks.popleft()
                if self._buffered >= STREAM_BUFFER_LIMIT:
                    self._cond.notify_all()  # the reader may be waiting for room
                self._buffered -= len(chunk)
            try:
                sock.sendall(chunk)  # outside the lock: the reader may append meanwhile
            except OSError:
                with self._cond:
                    self._sink = sock
                self._sink_broken = True
                ended = True
                break
            self.bytes_in += len(chunk)
        if ended:
            self._shutdown_sink()

    # ---- called by the stream's user ----

    def wait_open(self, plan: OpenPlan, started: float) -> None:
        """Client: block until the stream's opening has an outcome (version.open_outcome, from
        ``plan`` and cmdSYN sent at ``started``); raise StreamOpenError unless it is open."""
        with self._cond:
            while True:
                outcome = open_outcome(plan, elapsed=time.monotonic() - started,
                                       answer=self.answer,
                                       server_version=self.session.rules.server_version)
                if not isinstance(outcome, Wait):
                    break
                self._cond.wait(outcome.seconds)
        if outcome.reason is not None:
            raise StreamOpenError(outcome.text, outcome.reason)

    def recv(self, max_bytes: int = 1 << 16, timeout: float | None = None) -> bytes:
        """Next data, at most ``max_bytes``; b"" once the stream ended (FIN or local close).

        Raises ConnectionClosed if the session died, TimeoutError if ``timeout`` passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._chunks:
                if self._peer_closed or self._peer_finished or self._closed:
                    return b""
                if self._error is not None:
                    raise ConnectionClosed(f"session closed: {self._error}")
                if deadline is None:
                    self._cond.wait()
                elif not self._cond.wait(deadline - time.monotonic()):
                    if not self._chunks:
                        raise TimeoutError("no data in time")
            chunk = self._chunks.popleft()
            if len(chunk) > max_bytes:
                self._chunks.appendleft(chunk[max_bytes:])
                chunk = chunk[:max_bytes]
            was_full = self._buffered >= STREAM_BUFFER_LIMIT
            self._buffered -= len(chunk)
            if was_full:
                self._cond.notify_all()  # the reader may be waiting for room
        self.bytes_in += len(chunk)
        return chunk

    def sendall(self, data: bytes) -> None:
        if not self.sending:
            raise ConnectionClosed("stream is closed")
        self.session.send_data(self.stream_id, data)
        self.bytes_out += len(data)

    def send_in_place(self, buf: bytearray | memoryview, length: int) -> None:
        """Like sendall(buf[HEADER_SIZE:HEADER_SIZE+length]); the header goes into buf's first
        HEADER_SIZE bytes (the relay's fast path: no copy of the data)."""
        if not self.sending:
            raise ConnectionClosed("stream is closed")
        self.session.send_in_place(self.stream_id, buf, length)
        self.bytes_out += length

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sending(self) -> bool:
        """Our direction is open: not closed, not finished, not ended by the peer."""
        return not (self._closed or self._finished or self._peer_closed)

    def finish(self) -> None:
        """Client: we are done sending (the application's EOF): cmdFIN goes out, and the
        server's data still comes until its own FIN (decisions.md D40)."""
        with self._cond:
            if not self.sending:
                return
            self._finished = True
        self.session.stream_finished(self)

    def wait_closed(self, idle: float) -> bool:
        """Client, after ``finish``: block until the server's FIN (True), or until the session
        ends, or nothing has arrived for ``idle`` seconds (False)."""
        with self._cond:
            while not (self._peer_closed or self._closed or self._error):
                seen = self.bytes_in
                self._cond.wait(idle)
                if self.bytes_in == seen and not (self._peer_closed or self._closed
                                                  or self._error):
                    return False
            return self._peer_closed

    def close(self) -> None:
        """Done with the stream both ways: cmdFIN unless the stream is over on the wire already
        (the peer's FIN came, or ours went out)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()
        self._shutdown_sink()
        self.session.stream_closed(self)
