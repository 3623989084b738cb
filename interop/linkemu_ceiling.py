"""The link emulator's own ceiling: a plain TCP transfer through it (no TLS, no anytls).

Three processes, as in the bench: this one sends as fast as it can for --seconds, the emulator
runs as its CLI (``linkemu.py``, its own GIL), and a sink process (``--role sink``) reads and
times what arrives: throughput is the bytes between its first and last read over that time, so
the link's start-up (one RTT, the window's first round) is not in the figure. One connection per
setting; RTT 0, 20 and 100 ms, without and with a window, and with a bandwidth cap.

    python interop/linkemu_ceiling.py [--seconds 3] [--window BYTES] [--rate MBIT] [--json PATH]

Prints a table (MB/s = 10^6 bytes/s) and, for windowed settings, window / RTT (the bound a
real link of that window would give) next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop.linkemu import READ_SIZE  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULT = struct.Struct(">Qd")  # bytes counted, seconds between the first and last read


def run_sink(listener: socket.socket) -> None:
    """Accept connections one by one; for each read to EOF, then answer RESULT."""
    buf = bytearray(READ_SIZE)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            first = conn.recv_into(buf)
            if not first:
                continue
            start = last = time.monotonic()
            counted = 0
            while n := conn.recv_into(buf):
                counted += n
                last = time.monotonic()
            conn.sendall(RESULT.pack(counted, last - start))


def start_process(argv: list[str]) -> tuple[subprocess.Popen, tuple[str, int]]:
    """Start a process that prints 'listening HOST:PORT' first; return it and that address."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        proc.kill()
        raise RuntimeError(f"{argv}: no 'listening' line (got {line})")
    host, port = line[1].rsplit(":", 1)
    return proc, (host, int(port))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(sink: tuple[str, int], rtt_ms: float, rate_mbit: float | None,
            window: int | None, seconds: float, extra: list[str]) -> tuple[float, float]:
    """MB/s of one connection through a fresh emulator process, and the emulator's CPU
    seconds per GB moved."""
    argv = [str(HERE / "linkemu.py"), "--to", f"{sink[0]}:{sink[1]}", "--rtt", str(rtt_ms)]
    if rate_mbit is not None:
        argv += ["--rate", str(rate_mbit)]
    if window is not None:
        argv += ["--window", str(window)]
    emulator, address = start_process(argv + extra)
    try:
        chunk = memoryview(bytes(1 << 20))
        with socket.create_connection(address) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while len(answer) < RESULT.size:
                data = sock.recv(RESULT.size - len(answer))
                if not data:
                    raise RuntimeError("sink closed without a result")
                answer += data
        counted, elapsed = RESULT.unpack(answer)
        cpu = cpu_seconds(emulator.pid)
        return counted / elapsed / 1e6, cpu / (counted / 1e9)
    finally:
        stop(emulator)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per setting (default 3)")
    parser.add_argument("--window", type=int, default=4 << 20, help="default 4 MiB")
    parser.add_argument("--rate", type=float, default=100.0, help="Mbit/s (default 100)")
    parser.add_argument("--rtts", default="0,20,100", help="ms, comma-separated")
    parser.add_argument("--emulator-args", default="",
                        help="more arguments for linkemu.py, e.g. '--socket-buffer 262144'")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--role", choices=["sink"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "sink":
        listener = socket.create_server(("127.0.0.1", 0))
        print(f"listening 127.0.0.1:{listener.getsockname()[1]}", flush=True)
        run_sink(listener)
        return 0

    settings = [("no window", None, None), (f"window {args.window}", None, args.window),
                (f"{args.rate:g} Mbit/s", args.rate, None),
                (f"{args.rate:g} Mbit/s + window", args.rate, args.window)]
    sink, sink_address = start_process([__file__, "--role", "sink"])
    results = []
    try:
        for rtt in [float(x) for x in args.rtts.split(",")]:
            for label, rate, window in settings:
                mbs, cpu_per_gb = measure(sink_address, rtt, rate, window, args.seconds,
                                           args.emulator_args.split())
                bounds = []
                if window is not None and rtt > 0:
                    bounds.append(window / (rtt / 1000) / 1e6)
                if rate is not None:
                    bounds.append(rate / 8)
                bound = min(bounds) if bounds else None
                results.append({"rtt_ms": rtt, "setting": label, "mb_s": round(mbs, 1),
                                "bound_mb_s": None if bound is None else round(bound, 1),
                                "cpu_s_per_gb": round(cpu_per_gb, 2)})
                print(f"rtt {rtt:g} ms, {label}: {mbs:.1f} MB/s, {cpu_per_gb:.2f} CPU s/GB"
                      + (f" (bound {bound:.1f}, {mbs / bound:.1%})" if bound else ""),
                      file=sys.stderr, flush=True)
    finally:
        stop(sink)
    print(f"\nload average {os.getloadavg()[0]:.2f}\n"
          "| RTT ms | setting | MB/s | bound MB/s | emulator CPU s/GB |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rtt_ms']:g} | {r['setting']} | {r['mb_s']} | {r['bound_mb_s'] or '-'} "
              f"| {r['cpu_s_per_gb']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
