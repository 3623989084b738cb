"""A wide-area link emulator for the bench: a TCP relay that delays, paces and windows traffic.

Placed between a client and a server (client → emulator → server), it gives every connection
through it what a long link would (issue 15 items 1 and 5):

* a fixed one-way delay in each direction: every byte leaves ``one_way_delay`` after the relay
  read it, in order; data is handed on as soon as it is due, so the relay adds no batching delay
  or jitter of its own beyond the scheduler's (well under 1 ms when the machine is idle);
* optionally a bandwidth cap: bytes are serialised at ``rate`` bytes/s before the delay (reads
  are cut to about 1 ms of the link's time, so pacing stays within ~1 ms);
* optionally a window per direction: a byte counts as in flight from the moment the relay reads
  it until its acknowledgement would be back, i.e. one one-way delay after the relay began to
  hand it to the receiver (at the earliest its read time + RTT); while ``window`` bytes are in flight the
  relay stops reading, so one connection moves at most window / RTT, as on a real TCP link.
  The relay's socket buffers are kept small (``SOCKET_BUFFER``). Without a window the relay
  reads whatever arrives and holds it for the delay: the sender then sees a loopback round
  trip and moves at its loopback speed.

FIN and reset pass through: a peer's EOF reaches the other side ``one_way_delay`` later as
shutdown(SHUT_WR) (a half-close, so the other direction keeps flowing); a reset reaches it
``one_way_delay`` later as a reset (SO_LINGER 0). A send the receiver refuses resets both sides
at once. TCP_NODELAY is set on every socket.

What is NOT emulated: the TCP handshake. A client's connect() to the relay completes on
loopback at once, and the relay connects to the upstream at once, so a figure that includes
opening a TCP connection (a "new session": TCP, then TLS, then anytls) is one RTT shorter than
on a real link, where the SYN / SYN-ACK exchange costs one RTT before the client may send.
``tcp_handshake=True`` (CLI ``--tcp-handshake``) charges that RTT: the client's first bytes
are held as if its connect() had returned one RTT after the relay accepted it. Packet loss,
reordering and a shared bottleneck between connections (each connection has its own window
and its own rate cap) are not emulated either.

Why Python (measured with interop/linkemu_ceiling.py on this 2-vCPU machine, shared, load
2-4: plain TCP, Python source and sink in two other processes, the emulator in a third):
without a window it moved 880 MB/s at RTT 0, 640-850 at 20 ms and 530-570 at 100 ms; with a
4 MiB window 96 % of window / RTT at 20 ms (200 of 210 MB/s) and 100 % at 100 ms; with a
100 Mbit/s cap exactly 12.5 MB/s. The same source and sink connected directly move 750-790
MB/s, so at RTT 0 it is the machine, not the relay's language, that sets the limit: a Go relay
of the same design (tried, not kept) was no faster. What mattered was the socket buffer size
(``SOCKET_BUFFER``). Pacing: a 1-byte round trip takes the RTT + 0.35 ms at RTT 0 and
+ 0.9 ms with a delay (median; the timed wake-up costs ~0.3 ms per pass), a few ms at worst
when the machine is loaded. Run in its own process (the CLI) for figures: in-process, it shares
a GIL with whatever else runs there.

Use:

    with LinkEmulator(upstream=("127.0.0.1", server_port), one_way_delay=0.05,
                      window=4 << 20) as link:
        ...connect to link.address instead of the server...

    python interop/linkemu.py --listen 127.0.0.1:9000 --to 127.0.0.1:8443 --rtt 100 \\
        [--rate MBIT] [--window BYTES] [--tcp-handshake] [-v]
    python interop/linkemu_ceiling.py        (the relay's own ceiling: plain TCP through it)

Standard library only (like selfcheck.py), so a peer in any process can be put behind it.
"""

from __future__ import annotations

import argparse
import collections
import signal
import socket
import struct
import sys
import threading
import time

#: Bytes per read: large reads keep the per-byte cost of a Python relay low.
READ_SIZE = 256 * 1024
#: SO_RCVBUF / SO_SNDBUF requested for the relay's sockets (Linux doubles it). Not smaller:
#: at 64 KiB every read is small and the relay's ceiling falls to a third (measured: 64 KiB
#: ~240 MB/s, 128 KiB ~420, 256 KiB ~500-700 at RTT 0). The window stays exact: it gates the
#: relay's reads, so bytes waiting in its receive buffer have not entered the link yet (like
#: unsent bytes in a real sender's send buffer); they add a standing queue under load, not
#: throughput.
SOCKET_BUFFER = 256 * 1024
#: With a rate cap, one read is at most this much of the link's time, so a chunk handed on whole
#: is at most this late for its first byte.
PACING_SLICE = 0.001
#: Queue markers: the peer sent FIN / the peer reset the connection.
EOF = b""
RESET = None


class _Direction:
    """One direction of one connection: a reader thread (``src`` → queue) and a sender thread
    (queue → ``dst``) sharing one condition variable."""

    def __init__(self, link: _Connection, src: socket.socket, dst: socket.socket,
                 label: str, hold_until: float) -> None:
        self.link = link
        self.src, self.dst = src, dst
        self.label = label
        self.cond = threading.Condition()
        #: (due time, chunk | EOF | RESET), in read order
        self.queue: collections.deque = collections.deque()
        #: (time its acknowledgement is back, byte count), in send order
        self.acks: collections.deque = collections.deque()
        self.in_flight = 0
        self.stopped = False
        #: with a rate cap: when the emulated wire is free again
        self.wire_free = hold_until
        self.moved = 0

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    # ---- reader ----

    def _room(self) -> int:
        """Bytes the reader may take now; waits while the window is full. 0: stop reading."""
        emulator = self.link.emulator
        with self.cond:
            while not self.stopped:
                if emulator.window is None:
                    return READ_SIZE
                now = time.monotonic()
                while self.acks and self.acks[0][0] <= now:
                    self.in_flight -= self.acks.popleft()[1]
                room = emulator.window - self.in_flight
                if room > 0:
                    return min(room, READ_SIZE)
                self.cond.wait(self.acks[0][0] - now if self.acks else None)
            return 0

    def read_loop(self) -> None:
        emulator = self.link.emulator
        size_cap = READ_SIZE
        if emulator.rate is not None:
            size_cap = max(1500, min(READ_SIZE, int(emulator.rate * PACING_SLICE)))
        try:
            while True:
                room = self._room()
                if not room:
                    return
                try:
                    data = self.src.recv(min(room, size_cap))
                except ConnectionResetError:
                    data = RESET
                except OSError:
                    return  # woken by close() or an abort
                now = time.monotonic()
                with self.cond:
                    if self.stopped:
                        return
                    if emulator.rate is not None and data:
                        self.wire_free = max(now, self.wire_free) + len(data) / emulator.rate
                        due = self.wire_free + emulator.one_way_delay
                    else:
                        due = max(now, self.wire_free) + emulator.one_way_delay
                    self.queue.append((due, data))
                    if data:
                        self.in_flight += len(data)
                    self.cond.notify_all()
                if not data:  # EOF or RESET: nothing more to read
                    return
        finally:
            self.link.thread_done()

    # ---- sender ----

    def _next_due(self) -> tuple[float, bytes | None] | None:
        """The next chunk once it is due (None: stopped)."""
        with self.cond:
            while not self.stopped:
                if self.queue:
                    wait = self.queue[0][0] - time.monotonic()
                    if wait <= 0:
                        return self.queue.popleft()
                    self.cond.wait(wait)
                else:
                    self.cond.wait()
            return None

    def send_loop(self) -> None:
        delay = self.link.emulator.one_way_delay
        try:
            while (item := self._next_due()) is not None:
                data = item[1]
                if data is RESET:
                    self.link.abort()
                    return
                if not data:
                    try:
                        self.dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                # acknowledged one way after it left: the time the relay itself spends copying
                # it out is not the link's (a receiver that does not read still holds back the
                # next chunk's start, and so the window)
                started = time.monotonic()
                try:
                    self.dst.sendall(data)
                except OSError:
                    self.link.abort()  # the receiver is gone: both sides see a reset
                    return
                self.moved += len(data)
                with self.cond:
                    self.acks.append((started + delay, len(data)))
                    self.cond.notify_all()
        finally:
            self.link.thread_done()


class _Connection:
    """One client connection and its upstream connection: two directions, four threads. The last
    thread to finish closes both sockets; ``LinkEmulator`` joins the threads."""

    def __init__(self, emulator: LinkEmulator, client: socket.socket, upstream: socket.socket,
                 seq: int) -> None:
        self.emulator = emulator
        self.seq = seq
        self.socks = (client, upstream)
        self.lock = threading.Lock()
        self.aborted = False
        self.running = 4
        self.opened = time.monotonic()
        hold = self.opened + 2 * emulator.one_way_delay if emulator.tcp_handshake else 0.0
        self.directions = (_Direction(self, client, upstream, "up", hold),
                           _Direction(self, upstream, client, "down", 0.0))
        self.threads = [
            threading.Thread(target=fn, name=f"linkemu-{seq}-{d.label}-{kind}")
            for d in self.directions
            for kind, fn in (("read", d.read_loop), ("send", d.send_loop))]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def abort(self) -> None:
        """Reset both sides: SO_LINGER 0 makes the final close send RST; SHUT_RD wakes the
        readers without sending a FIN first."""
        with self.lock:
            if self.aborted:
                return
            self.aborted = True
        for sock in self.socks:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        for direction in self.directions:
            direction.stop()

    def wake(self) -> None:
        """For close(): stop everything (a sender blocked in sendall needs SHUT_RDWR)."""
        for direction in self.directions:
            direction.stop()
        for sock in self.socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def thread_done(self) -> None:
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:
            for sock in self.socks:
                sock.close()
            self.emulator._connection_done(self)


def _set_buffers(sock: socket.socket, size: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def _nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LinkEmulator:
    """Relays every connection accepted on ``listen`` to ``upstream`` through an emulated link.

    ``one_way_delay`` in seconds (RTT / 2), ``rate`` in bytes/s (None: no cap), ``window`` in
    bytes per direction and connection (None: no window). ``start()`` (or ``with``) begins
    accepting; ``close()`` stops it, ends every connection and joins every thread.
    """

    def __init__(self, listen: tuple[str, int] = ("127.0.0.1", 0),
                 upstream: tuple[str, int] = ("127.0.0.1", 0), one_way_delay: float = 0.0,
                 rate: float | None = None, window: int | None = None,
                 tcp_handshake: bool = False, socket_buffer: int = SOCKET_BUFFER,
                 verbose: bool = False) -> None:
        if one_way_delay < 0 or (rate is not None and rate <= 0) or (
                window is not None and window <= 0):
            raise ValueError("delay must be >= 0, rate and window > 0")
        self.upstream = upstream
        self.one_way_delay = one_way_delay
        self.rate = rate
        self.window = window
        self.tcp_handshake = tcp_handshake
        self.socket_buffer = socket_buffer
        self.verbose = verbose
        self._listener = socket.socket(socket.AF_INET6 if ":" in listen[0] else socket.AF_INET)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            _set_buffers(self._listener, socket_buffer)  # inherited by accepted sockets (before the handshake)
            self._listener.bind(listen)
            self._listener.listen(1024)
        except OSError:
            self._listener.close()
            raise
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._live: set[_Connection] = set()
        self._finished: list[_Connection] = []
        self._closing = False
        self._accept_thread: threading.Thread | None = None
        #: connections accepted so far (a client's TCP connections to its server)
        self.accepted = 0

    def __enter__(self) -> LinkEmulator:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._accept_thread = threading.Thread(target=self._accept_loop, name="linkemu-accept")
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                with self._lock:
                    if self._closing:
                        return
                continue
            self._join_finished()
            _nodelay(client)
            upstream = socket.socket(self._listener.family)
            try:
                _set_buffers(upstream, self.socket_buffer)
                _nodelay(upstream)
                upstream.settimeout(5.0)
                upstream.connect(self.upstream)
                upstream.settimeout(None)
            except OSError as exc:
                self._log(f"upstream {self.upstream[0]}:{self.upstream[1]}: {exc}")
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                upstream.close()
                continue
            with self._lock:
                if self._closing:
                    client.close()
                    upstream.close()
                    return
                self.accepted += 1
                conn = _Connection(self, client, upstream, self.accepted)
                self._live.add(conn)
            self._log(f"conn {conn.seq}: open")
            conn.start()

    def _connection_done(self, conn: _Connection) -> None:
        up, down = conn.directions
        self._log(f"conn {conn.seq}: closed after {time.monotonic() - conn.opened:.3f} s, "
                  f"{up.moved} bytes up, {down.moved} down{' (reset)' if conn.aborted else ''}")
        with self._lock:
            self._live.discard(conn)
            self._finished.append(conn)

    def _join_finished(self) -> None:
        """Join the threads of connections that have ended (each has run its last line)."""
        with self._lock:
            finished, self._finished = self._finished, []
        for conn in finished:
            for thread in conn.threads:
                thread.join()

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"linkemu {time.monotonic():.3f} {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop accepting, end every connection (abortively) and join every thread."""
        with self._lock:
            self._closing = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        if self._accept_thread is not None:
            self._accept_thread.join()
        self._listener.close()
        with self._lock:
            live = list(self._live)
        for conn in live:
            conn.wake()
        for conn in live:
            for thread in conn.threads:
                thread.join()
        self._join_finished()


# ---- command line ----

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"linkemu.py: error: {message}\n")


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="linkemu.py", description="TCP relay emulating a wide-area link (delay, rate, "
        "window). Prints 'listening HOST:PORT' on stdout once it accepts; SIGTERM or ^C ends it.")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0),
                        help="HOST:PORT to accept on (port 0: any; default 127.0.0.1:0)")
    parser.add_argument("--to", type=_address, required=True,
                        help="HOST:PORT of the upstream server")
    parser.add_argument("--rtt", type=float, required=True, help="round-trip time in ms")
    parser.add_argument("--rate", type=float, help="bandwidth cap in Mbit/s (default none)")
    parser.add_argument("--window", type=int, help="bytes in flight per direction and "
                        "connection (default none)")
    parser.add_argument("--tcp-handshake", action="store_true",
                        help="charge one RTT for the client's TCP handshake")
    parser.add_argument("--socket-buffer", type=int, default=SOCKET_BUFFER,
                        help=f"SO_RCVBUF/SO_SNDBUF of the relay's sockets (default "
                        f"{SOCKET_BUFFER})")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every connection on stderr")
    args = parser.parse_args(argv)
    if args.rtt < 0 or (args.rate is not None and args.rate <= 0) or (
            args.window is not None and args.window <= 0):
        parser.error("--rtt must be >= 0, --rate and --window > 0")
    try:
        emulator = LinkEmulator(args.listen, args.to, one_way_delay=args.rtt / 2000,
                                rate=None if args.rate is None else args.rate * 1e6 / 8,
                                window=args.window, tcp_handshake=args.tcp_handshake,
                                socket_buffer=args.socket_buffer, verbose=args.verbose)
    except OSError as exc:
        parser.error(f"cannot listen on {args.listen[0]}:{args.listen[1]}: "
                     f"{exc.strerror or exc}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with emulator:
        print(f"listening {emulator.address[0]}:{emulator.address[1]}", flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
