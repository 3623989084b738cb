"""A wide-area link emulator for the bench: a TCP relay that delays, paces and windows traffic.

Put between a client and a server (client → emulator → server), it gives every connection
through it what a long link would (issue 15 items 1 and 5):

* a fixed one-way delay in each direction: every byte is handed on ``one_way_delay`` after the
  relay read it, in order. A sender per direction waits for each chunk's due time and writes it
  then: no batching, no jitter of its own beyond a timer's wake-up (tens of µs when idle);
* optionally a bandwidth cap: bytes are serialised at ``rate`` bytes/s, then delayed. A read is
  cut into slices of about 1 ms of link time (at least 1500 bytes), each due when serialised;
* optionally a window per direction: a byte is in flight from the moment the relay reads it
  until its acknowledgement would be back: one delay after it was handed on, i.e. at the
  earliest its read time + RTT. While ``window`` bytes are in flight the relay stops reading, so
  one connection moves at most window / RTT, as on a real TCP link. Two details keep the relay's
  own scheduling out of that bound: data that was already waiting when the window opened counts
  as read when it opened, and a sender's late wake-up does not delay the acknowledgement (a
  receiver that is slow to take the data does). The relay's socket buffers (SO_RCVBUF and
  SO_SNDBUF, 64 KiB asked, 128 KiB granted) hold bytes beyond the window, so under a window they
  are kept that small; without one the kernel sizes them, and the relay reads whatever arrives
  and holds it for the delay (the sender sees a loopback round trip). A rate cap without a
  window therefore holds what the sender pushes beyond the rate (up to 1024 reads or slices).

A peer's EOF reaches the other side one delay later as shutdown(SHUT_WR) (a half-close: the
other direction keeps flowing); a reset reaches it one delay later as a reset (SO_LINGER 0,
close). When a side refuses data (it has gone), the side that sent it is reset one delay later.
TCP_NODELAY on every socket.

Not emulated: the TCP handshake (a connect() to the relay completes at once, so a figure that
includes opening a connection is one RTT short of a real link's; ``handshake=True`` holds a new
connection's first client bytes until one RTT after the accept, as if its connect() had taken
that long), loss, reordering, and a bottleneck shared by connections (each has its own window).

Why Go (interop/go/linkemu, built by interop/peers.sh into the peers folder; this module starts
it and is its Python face). The relay must not be what limits a pair: its ceiling should be 5x
the fastest pair's throughput, about 1 GB/s for a 4 MiB window at 20 ms (bound 210 MB/s). The
same relay was first written in Python (256 KiB reads, a deque of (due time, chunk), a reader and
a sender thread per direction, in its own process) and measured side by side with the Go one on
this 2-vCPU machine, both loaded by other jobs: without a window 700-930 MB/s against 720-1140,
at 0.9-1.2 CPU seconds per GB against 0.7-1.1; with the small buffers a window needs, 350 MB/s
at RTT 0 against 460-800 (2.9 CPU s/GB against 1.2), and 0.68-0.97 of window / RTT at 20 ms
against 0.88-0.97. Every CPU second the relay takes is taken from the pair it measures (client,
server, relay and target share two vCPUs), so the cheaper one wins; the Go program is stdlib only
(no go.sum) and builds in seconds. Its ceilings (interop/linkemu_ceiling.py: plain TCP through
it to a sink process; two runs, load 2.5-3): without a window 600-1070 MB/s at RTT 0, 20 and
100 ms (direct loopback 1.8-2.4 GB/s); with a 4 MiB window 0.95-0.97 of window / RTT at 20 ms
and 1.00 at 100 ms; with 100 Mbit/s, 1.000 of the rate. A timer's wake-up adds 0.3-0.5 ms per
direction (median; p95 under 1 ms) to the delay. So 5x holds at 100 ms and under the rate cap;
at 20 ms with 4 MiB the relay's capacity with small buffers (680-750 MB/s in those runs) is
3.3-3.6x the bound it imposes, which it reaches itself within 3-5 %; and without a window no relay
on this machine has 5x a pair's loopback speed (600-900 MB/s): bulk over a long link needs the
window anyway (issue 15 item 5).

    with LinkEmulator(("127.0.0.1", server_port), one_way_delay=0.05, window=4 * MiB) as link:
        ...  # connect to link.address instead of the server

    python interop/linkemu.py --to 127.0.0.1:8443 --rtt 100 [--listen HOST:PORT]
        [--rate MBIT] [--window BYTES|4MiB] [--handshake]
    (prints "listening on HOST:PORT" on stdout; SIGTERM or SIGINT ends it)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anytls_ref.cli.inputs import UsageError, host_port  # noqa: E402
from interop.peers import peers_dir  # noqa: E402

MiB = 1 << 20
SOURCE = Path(__file__).resolve().parent / "go" / "linkemu"


def source_version() -> str:
    """The build's folder name: a hash of the Go sources (interop/peers.sh computes the same), so
    a changed relay is rebuilt and an old build is never used."""
    digest = hashlib.sha256((SOURCE / "go.mod").read_bytes() + (SOURCE / "main.go").read_bytes())
    return "src-" + digest.hexdigest()[:12]


def binary() -> Path | None:
    """The Go build of the relay for the current sources, or None if it is not built."""
    home = peers_dir() / f"linkemu-{source_version()}"
    path = home / "bin" / "linkemu"
    return path if (home / ".complete").exists() and os.access(path, os.X_OK) else None


class NotBuilt(RuntimeError):
    """The Go build of the relay is missing."""

    def __init__(self) -> None:
        super().__init__(f"linkemu {source_version()} is not built (run `make peers`; needs go)")


def relay_args(upstream: tuple[str, int], *, listen: tuple[str, int], rtt_ms: float,
               rate_mbit: float | None, window: int | None, handshake: bool) -> list[str]:
    """The Go program's flags."""
    args = ["-listen", f"{listen[0]}:{listen[1]}", "-to", f"{upstream[0]}:{upstream[1]}",
            "-rtt", repr(rtt_ms)]
    if rate_mbit is not None:
        args += ["-rate", repr(rate_mbit)]
    if window is not None:
        args += ["-window", str(window)]
    return args + (["-handshake"] if handshake else [])


class LinkEmulator:
    """Relays every connection to ``listen`` on to ``upstream`` through an emulated link, in a
    process of its own (so it shares no GIL and takes as little CPU as it can).

    ``listen`` is (host, port) or a port on 127.0.0.1 (0 picks one); ``address`` is where it
    listens. ``rate`` is in bytes/s. A context manager: ``close()`` ends the process (and with
    it every connection through it) and waits for it. Raises ``NotBuilt`` without the Go build.
    """

    def __init__(self, upstream: tuple[str, int], *, listen: tuple[str, int] | int = 0,
                 one_way_delay: float = 0.0, rate: float | None = None,
                 window: int | None = None, handshake: bool = False) -> None:
        if one_way_delay < 0 or (rate is not None and rate <= 0) or \
                (window is not None and window <= 0):
            raise ValueError("the delay must be >= 0, a rate or a window > 0")
        program = binary()
        if program is None:
            raise NotBuilt()
        if isinstance(listen, int):
            listen = ("127.0.0.1", listen)
        self.one_way_delay, self.rate, self.window = one_way_delay, rate, window
        self.proc = subprocess.Popen(
            [str(program), *relay_args(upstream, listen=listen, rtt_ms=one_way_delay * 2000,
                                       rate_mbit=rate * 8 / 1e6 if rate else None,
                                       window=window, handshake=handshake)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            error = self.proc.stderr.read().strip()
            self.close()
            raise RuntimeError(f"linkemu did not start: {error or 'exit ' + str(self.proc.returncode)}")
        self.address: tuple[str, int] = host_port(line.split()[-1])

    @property
    def rtt(self) -> float:
        return 2 * self.one_way_delay

    def __enter__(self) -> LinkEmulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


# --------------------------------------------------------------------------- command line


def byte_count(text: str) -> int:
    """``4194304``, ``512KiB``, ``4MiB`` (also K, M; any case) → bytes."""
    units = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": MiB, "mib": MiB}
    number = text.rstrip("kKmMiIbB")
    unit = text[len(number):].lower()
    if not number.isdigit() or unit not in units or int(number) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count such as 4MiB")
    return int(number) * units[unit]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    """Check the flags, then become the Go program (exec): signals go straight to it."""
    parser = _Parser(prog="linkemu.py", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default 127.0.0.1:0)")
    parser.add_argument("--to", required=True, help="HOST:PORT of the server behind the link")
    parser.add_argument("--rtt", type=float, default=0.0, help="round trip in ms (half each way)")
    parser.add_argument("--rate", type=float, help="bandwidth cap in Mbit/s (each direction)")
    parser.add_argument("--window", type=byte_count, help="bytes in flight per direction")
    parser.add_argument("--handshake", action="store_true",
                        help="charge one RTT for each new connection's TCP handshake")
    try:
        args = parser.parse_args(argv)
        if args.rtt < 0 or (args.rate is not None and args.rate <= 0):
            raise UsageError("--rtt must be >= 0 and --rate > 0")
        listen, upstream = host_port(args.listen, what="--listen"), host_port(args.to, what="--to")
        program = binary()
        if program is None:
            raise UsageError(str(NotBuilt()))
    except UsageError as exc:
        print(f"linkemu: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(program, [str(program), *relay_args(upstream, listen=listen, rtt_ms=args.rtt,
                                                 rate_mbit=args.rate, window=args.window,
                                                 handshake=args.handshake)])


if __name__ == "__main__":
    sys.exit(main())
