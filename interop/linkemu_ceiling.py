"""The link emulator's own ceiling: plain TCP through it, no TLS, no anytls (issue 15 item 1).

Three processes: this one sends as fast as it can for --seconds (at least 50 RTTs: a windowed
flow arrives in bursts, one window per RTT) over one connection; the emulator relays; a sink process (``--role sink``) reads and
discards, then answers with the bytes it got and the time from its first byte to the last. The
rate is taken at the sink, so bytes still held in buffers when the sender stops do not count.
Settings: RTT 0, 20 and 100 ms, each without a window, with --window, and with --rate and the
window (a rate cap without a window would let the relay hold everything the sender pushes).
``direct`` is the same transfer without the emulator: the machine's own loopback ceiling.
Also: the emulator's CPU seconds per GB moved (from /proc/PID/stat) and the load average.

    python interop/linkemu_ceiling.py [--seconds 3] [--window 4MiB] [--rate 100] [--rtt 0 20 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop.linkemu import LinkEmulator, MiB, NotBuilt, binary, byte_count  # noqa: E402
from interop.peers import LOOPBACK, free_port, stop, wait_for_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def run_sink(port: int) -> None:
    """One connection at a time: count bytes to EOF, answer ``BYTES SECONDS`` (first to last)."""
    buf = bytearray(MiB)
    with socket.create_server((LOOPBACK, port)) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:
                received, first, last = 0, 0.0, 0.0
                while n := conn.recv_into(buf):
                    last = time.monotonic()
                    if not received:
                        first = last
                    received += n
                conn.sendall(f"{received} {last - first:.6f}\n".encode())


def transfer(address: tuple[str, int], seconds: float) -> float:
    """Send for ``seconds``; the sink's rate in bytes/s."""
    block = memoryview(os.urandom(MiB))
    with socket.create_connection(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        received, elapsed = sock.makefile().readline().split()
    return int(received) / float(elapsed)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=["bench", "sink"], default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0, help="per transfer (default 3)")
    parser.add_argument("--window", type=byte_count, default=4 * MiB, help="default 4MiB")
    parser.add_argument("--rate", type=float, default=100.0, help="Mbit/s (default 100)")
    parser.add_argument("--rtt", type=float, nargs="+", default=[0.0, 20.0, 100.0],
                        help="ms (default 0 20 100)")
    args = parser.parse_args()
    if args.role == "sink":
        run_sink(args.port)
        return 0

    if binary() is None:
        print(f"linkemu_ceiling: {NotBuilt()}", file=sys.stderr)
        return 2
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, __file__, "--role", "sink", "--port", str(sink_port)])
    rows = []
    try:
        wait_for_port(LOOPBACK, sink_port, proc=sink)
        rate = transfer((LOOPBACK, sink_port), args.seconds)
        rows.append(["direct (no emulator)", "", "", "", f"{rate / 1e6:.0f}", "", ""])
        for rtt in args.rtt:
            for window, mbit in ((None, None), (args.window, None), (args.window, args.rate)):
                bounds = [b for b in (window / (rtt / 1000) if window and rtt else None,
                                      mbit * 1e6 / 8 if mbit else None) if b]
                bound = min(bounds) if bounds else None
                seconds = max(args.seconds, 50 * rtt / 1000)  # window bursts: <= 2 % error
                with LinkEmulator((LOOPBACK, sink_port), one_way_delay=rtt / 2000,
                                  rate=mbit * 1e6 / 8 if mbit else None, window=window) as link:
                    cpu = cpu_seconds(link.proc.pid)
                    rate = transfer(link.address, seconds)
                    cpu = cpu_seconds(link.proc.pid) - cpu
                moved = rate * seconds  # about: the sender's time, the sink's rate
                rows.append([f"linkemu rtt {rtt:g} ms", f"{window // MiB} MiB" if window else "-",
                             f"{mbit:g} Mbit/s" if mbit else "-",
                             f"{bound / 1e6:.1f}" if bound else "-", f"{rate / 1e6:.1f}",
                             f"{rate / bound:.3f}" if bound else "",
                             f"{cpu / (moved / 1e9):.2f}"])
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        stop(sink)
    print(tabulate(rows, headers=["setting", "window", "rate cap", "bound MB/s", "MB/s",
                                  "of bound", "emulator CPU s/GB"]))
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
