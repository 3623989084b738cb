"""Benchmarks: anytls_ref against the Go implementations and two baselines (``make bench``).

Every implementation runs as its own process (ours as ``python -m anytls_ref server|client``,
so our two sides do not share a GIL, as the Go peers do not share a runtime). The bench process
drives traffic through the client's SOCKS5 port to a sink/source in a separate process (the
target, bench_procs.py: one thread and a selector, so it neither starts threads nor contends for
a GIL; the ``direct`` pair shows what it can move). Three parts:

* bulk:        --size MiB upload and download per pair; median of --rounds, rounds interleaved
               (every pair once per round), ratios taken within this run. CPU seconds per GB
               of the client and server processes from /proc/PID/stat.
* latency:     time to the first byte of a new stream (SOCKS connect, request, 1-byte answer)
               on a reused session (each stream closed before the next, so its session is idle
               again) and on a new one (earlier streams are kept open, so no session is idle);
               median and p95.
* concurrency: N streams through one fresh client+server pair: all N are opened first, then
               each downloads 1 MiB at once: aggregate MB/s, errors, peak RSS (VmHWM), RSS per
               stream and CPU seconds per GB moved.

Baselines: ``direct`` (bench process ↔ target over plain TCP) and ``tls-chain``: a plain Python
TLS relay in the same process layout as an anytls pair (a client process relays SOCKS5 → TLS,
a server process TLS → target; bench_procs.py). ``--before DIR`` adds our code from another
tree as one more pair (``Setup.before_tree``).

Prints progress to stderr, then tables; writes JSON (default interop/bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop import peers as peer_mod  # noqa: E402
from interop.bench_procs import (  # noqa: E402
    HEADER,
    MODE_DOWNLOAD,
    MODE_PING,
    MODE_UPLOAD,
    MiB,
    recv_exact,
)
from interop.peers import LOOPBACK, free_port, make_cert, stop, wait_for_port  # noqa: E402

from anytls_ref.net.socks_client import socks5_connect  # noqa: E402
from anytls_ref.net.sockutil import set_nodelay  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: the target and tls-chain processes (``bench_procs.py --role ...``)
PROCS = str(Path(__file__).resolve().with_name("bench_procs.py"))
WORK = REPO / "interop" / ".work" / "bench"
PASSWORD = "bench-password"
OURS = "anytls_ref"
#: our code from another tree (--before DIR): the same-run "before" of a change
BEFORE = "anytls_ref@before"
#: our client with --wait-synack (answers SOCKS5 only after cmdSYNACK: the default before D34
#: was revised)
WAIT = "anytls_ref+wait-synack"
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: (client, server) pairs of the bulk and latency parts, in run order
PAIRS = [
    ("direct", "direct"),
    ("tls-chain", "tls-chain"),
    (OURS, OURS),
    ("sing-box", "sing-box"),
    (OURS, "sing-box"),
    ("sing-box", OURS),
    ("anytls-go", "anytls-go"),
    (OURS, "anytls-go"),
    ("anytls-go", OURS),
    (WAIT, OURS),
    (WAIT, "anytls-go"),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pair_name(client: str, server: str) -> str:
    if client == server and client in ("direct", "tls-chain", BEFORE):
        return client
    return f"{client}→{server}"


# --------------------------------------------------------------------------- processes


def _py_spawn(name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
    return peer_mod._spawn(name, [sys.executable, *args], WORK, env)


@dataclass(frozen=True)
class Setup:
    """What starting a pair needs besides its names: the server certificate, and the tree of
    the ``--before`` code (None: no such pair)."""

    cert: Path
    key: Path
    before_tree: str | None = None
    #: the sink/source every pair's streams go to (``direct`` connects to it)
    target: tuple[str, int] = (LOOPBACK, 0)


@dataclass
class Running:
    """One pair's processes: the SOCKS5 port to use and the PIDs to measure."""

    client: str
    server: str
    socks_port: int
    server_port: int
    procs: list[subprocess.Popen] = field(default_factory=list)
    #: the link emulator between client and server (bench_wan.py), if any
    link: object | None = None
    #: ``direct`` through an emulator: where the bench connects instead of the target
    direct_via: tuple[str, int] | None = None

    @property
    def name(self) -> str:
        return pair_name(self.client, self.server)

    @property
    def pids(self) -> dict[str, int]:
        # procs are [server, client] for anytls pairs
        if len(self.procs) < 2:
            return {}
        return {"server": self.procs[0].pid, "client": self.procs[1].pid}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        if self.link is not None:
            self.link.close()


def _ours_env(impl: str, setup: Setup) -> dict | None:
    return {"PYTHONPATH": setup.before_tree} if impl == BEFORE else None


def start_server(impl: str, port: int, setup: Setup) -> subprocess.Popen:
    if impl in (OURS, BEFORE):
        return _py_spawn(f"ours-server-{port}", [
            "-m", "anytls_ref", "--log-level", "warning", "server", "-l", f"{LOOPBACK}:{port}",
            "-p", PASSWORD, "--cert", str(setup.cert), "--key", str(setup.key)],
            _ours_env(impl, setup))
    return peer_mod.get_peer(impl).start_server(WORK, port, PASSWORD, cert=setup.cert,
                                                key=setup.key)


def start_client(impl: str, port: int, server_port: int, setup: Setup) -> subprocess.Popen:
    if impl in (OURS, BEFORE, WAIT):
        return _py_spawn(f"ours-client-{port}", [
            "-m", "anytls_ref", "--log-level", "warning", "client", "-l", f"{LOOPBACK}:{port}",
            "-s", f"{LOOPBACK}:{server_port}", "-p", PASSWORD, "--insecure", "--sni", "localhost",
            *(["--wait-synack"] if impl == WAIT else [])], _ours_env(impl, setup))
    return peer_mod.get_peer(impl).start_client(WORK, port, server_port, PASSWORD)


def start_pair(client: str, server: str, setup: Setup, link=None) -> Running:
    """Start a pair; ``link(port)`` (bench_wan.py) puts a link emulator in front of the
    server's port (for ``direct``, of the target's) and returns it."""
    if client == "direct":
        run = Running(client, server, 0, 0)
        if link is not None:
            run.link = link(setup.target[1])
            run.direct_via = run.link.address
        return run
    server_port, socks_port = free_port(), free_port()
    run = Running(client, server, socks_port, server_port)
    try:
        if client == "tls-chain":
            run.procs.append(_py_spawn(f"tls-server-{server_port}", [
                PROCS, "--role", "tls-server", "--port", str(server_port),
                "--cert", str(setup.cert), "--key", str(setup.key)]))
        else:
            run.procs.append(start_server(server, server_port, setup))
        wait_for_port(LOOPBACK, server_port, 15, run.procs[0])
        reach = server_port
        if link is not None:
            run.link = link(server_port)
            reach = run.link.address[1]
        if client == "tls-chain":
            run.procs.append(_py_spawn(f"tls-client-{socks_port}", [
                PROCS, "--role", "tls-client", "--port", str(socks_port),
                "--server-port", str(reach)]))
        else:
            run.procs.append(start_client(client, socks_port, reach, setup))
        wait_for_port(LOOPBACK, socks_port, 15, run.procs[1])
    except BaseException:
        run.stop()
        raise
    return run


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_status(pid: int, key: str) -> int:
    """A kB figure from /proc/PID/status (VmHWM, VmRSS), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# --------------------------------------------------------------------------- traffic


def open_stream(run: Running, target: tuple[str, int], timeout: float = 30.0) -> socket.socket:
    """A TCP connection to ``target``: direct, or through the pair's SOCKS5 port."""
    if run.client == "direct":
        sock = socket.create_connection(run.direct_via or target, timeout=timeout)
        set_nodelay(sock)
        return sock
    return socks5_connect((LOOPBACK, run.socks_port), target, timeout=timeout)


SOURCE = memoryview(os.urandom(MiB))


def upload(sock: socket.socket, n: int) -> None:
    sock.sendall(HEADER.pack(MODE_UPLOAD, n))
    sent = 0
    while sent < n:
        k = min(n - sent, MiB)
        sock.sendall(SOURCE[:k])
        sent += k
    if recv_exact(sock, 1) != b"K":
        raise ConnectionError("no acknowledgement from the sink")


def download(sock: socket.socket, n: int, buf: memoryview | None = None) -> None:
    sock.sendall(HEADER.pack(MODE_DOWNLOAD, n))
    buf = buf if buf is not None else memoryview(bytearray(MiB))
    got = 0
    while got < n:
        k = sock.recv_into(buf[: min(len(buf), n - got)])
        if not k:
            raise ConnectionError(f"closed after {got} of {n} bytes")
        got += k


def bulk_once(run: Running, target: tuple[str, int], direction: str, n: int) -> dict:
    pids = run.pids
    cpu0 = {role: cpu_seconds(pid) for role, pid in pids.items()}
    with open_stream(run, target, timeout=120) as sock:
        start = time.perf_counter()
        (upload if direction == "upload" else download)(sock, n)
        elapsed = time.perf_counter() - start
    cpu = {role: cpu_seconds(pid) - cpu0[role] for role, pid in pids.items()}
    return {"seconds": elapsed, "MBps": n / elapsed / 1e6,
            "cpu_s_per_GB": {role: c / (n / 1e9) for role, c in cpu.items()}}


def ttfb_once(run: Running, target: tuple[str, int]) -> tuple[float, socket.socket]:
    start = time.perf_counter()
    sock = open_stream(run, target)
    try:
        sock.sendall(HEADER.pack(MODE_PING, 0) + b"x")
        if recv_exact(sock, 1) != b"x":
            raise ConnectionError("bad ping answer")
    except BaseException:
        sock.close()
        raise
    return time.perf_counter() - start, sock


def sessions_to(port: int) -> int:
    """Established TCP connections to 127.0.0.1:port (each is one anytls session)."""
    count = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == port:
                        count += 1
        except OSError:
            pass
    return count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- the three parts


def run_bulk(runs: list[Running], target: tuple[str, int], n: int, rounds: int) -> dict:
    results: dict[str, dict[str, list[dict]]] = {r.name: {"upload": [], "download": []}
                                                 for r in runs}
    for rnd in range(1, rounds + 1):
        for run in runs:
            for direction in ("upload", "download"):
                res = bulk_once(run, target, direction, n)
                res["load"] = loadavg()
                results[run.name][direction].append(res)
                log(f"[bulk {rnd}/{rounds}] {run.name:<24} {direction:<8} "
                    f"{res['MBps']:8.0f} MB/s  (load {res['load']:.2f})")
    summary = {}
    for name, dirs in results.items():
        summary[name] = {}
        for direction, samples in dirs.items():
            cpu_roles = samples[0]["cpu_s_per_GB"].keys()
            summary[name][direction] = {
                "MBps_median": statistics.median(s["MBps"] for s in samples),
                "MBps_samples": [round(s["MBps"], 1) for s in samples],
                "cpu_s_per_GB_median": {
                    role: statistics.median(s["cpu_s_per_GB"][role] for s in samples)
                    for role in cpu_roles},
            }
    return summary


def run_latency(runs: list[Running], target: tuple[str, int], count: int) -> dict:
    out = {}
    for run in runs:
        out[run.name] = {}
        # reused: each stream ends before the next starts, so its session is idle again
        times = []
        for _ in range(count):
            t, sock = ttfb_once(run, target)
            sock.close()
            times.append(t)
            time.sleep(0.01)  # let the client see the close and pool the session
        sessions = sessions_to(run.server_port) if run.server_port else 0
        out[run.name]["reused"] = {"median_ms": statistics.median(times) * 1e3,
                                   "p95_ms": percentile(times, 0.95) * 1e3,
                                   "sessions_open_after": sessions}
        # new: every earlier stream stays open, so no session is idle and each needs a new one
        times, held = [], []
        try:
            for _ in range(count):
                t, sock = ttfb_once(run, target)
                held.append(sock)
                times.append(t)
            sessions = sessions_to(run.server_port) if run.server_port else 0
        finally:
            for sock in held:
                sock.close()
        out[run.name]["new"] = {"median_ms": statistics.median(times) * 1e3,
                                "p95_ms": percentile(times, 0.95) * 1e3,
                                "sessions_open_after": sessions}
        reused, new = out[run.name]["reused"], out[run.name]["new"]
        log(f"[latency] {run.name:<24} reused {reused['median_ms']:6.2f} ms "
            f"(p95 {reused['p95_ms']:6.2f}), new {new['median_ms']:6.2f} ms "
            f"(p95 {new['p95_ms']:6.2f})  sessions {reused['sessions_open_after']}/{sessions}")
        time.sleep(0.5)
    return out


def run_concurrency(pair: tuple[str, str], target: tuple[str, int], streams: int, size: int,
                    setup: Setup) -> dict:
    run = start_pair(*pair, setup)
    try:
        time.sleep(0.3)
        pids = run.pids
        rss0 = {role: proc_status(pid, "VmRSS") for role, pid in pids.items()}
        cpu0 = {role: cpu_seconds(pid) for role, pid in pids.items()}
        errors: list[str] = []
        lock = threading.Lock()
        # every stream is opened first (SOCKS, session, target connection), then all of them
        # transfer at once: N streams really are open together
        all_open = threading.Barrier(streams + 1)
        done = [0]

        def one() -> None:
            sock = None
            try:
                sock = open_stream(run, target, timeout=120)
            except Exception as exc:  # counted, not raised
                with lock:
                    errors.append(f"open: {type(exc).__name__}: {exc}")
            try:
                all_open.wait()
                if sock is not None:
                    download(sock, size, memoryview(bytearray(1 << 16)))
                    with lock:
                        done[0] += 1
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                if sock is not None:
                    sock.close()

        old = threading.stack_size(256 * 1024)
        threads = [threading.Thread(target=one) for _ in range(streams)]
        opening = time.perf_counter()
        for t in threads:
            t.start()
        threading.stack_size(old)
        all_open.wait()
        start = time.perf_counter()
        open_seconds = start - opening
        threads_open = {role: thread_count(pid) for role, pid in pids.items()}
        rss_open = {role: proc_status(pid, "VmRSS") for role, pid in pids.items()}
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        moved = done[0] * size
        cpu = {role: cpu_seconds(pid) - cpu0[role] for role, pid in pids.items()}
        hwm = {role: proc_status(pid, "VmHWM") for role, pid in pids.items()}
        result = {
            "pair": run.name, "streams": streams, "MiB_per_stream": size / MiB,
            "open_seconds": open_seconds, "seconds": elapsed, "MBps": moved / elapsed / 1e6,
            "errors": len(errors),
            "error_samples": sorted(set(errors))[:5],
            "peak_rss_MB": {r: v / 1e6 for r, v in hwm.items()},
            "rss_per_stream_kB": {r: (hwm[r] - rss0[r]) / streams / 1e3 for r in pids},
            "threads_with_all_open": threads_open,
            "rss_with_all_open_MB": {r: v / 1e6 for r, v in rss_open.items()},
            "cpu_s_per_GB": {r: c / (moved / 1e9) if moved else None for r, c in cpu.items()},
            "load": loadavg(),
        }
        log(f"[concurrency] {run.name:<24} {streams:5d} streams (opened in {open_seconds:.1f} s): "
            f"{result['MBps']:7.0f} MB/s, "
            f"{len(errors)} errors, peak RSS client {result['peak_rss_MB'].get('client', 0):.0f} MB"
            f" server {result['peak_rss_MB'].get('server', 0):.0f} MB")
        return result
    finally:
        run.stop()


# --------------------------------------------------------------------------- report


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def ratio_table(ratios: list[dict], kinds: tuple[str, str]) -> list[str]:
    """The lines of a table of ``ratios`` (one column per kind), after a blank line; none if
    there are no ratios."""
    rows = [[r["pair"], r["vs"], *(f"{r[k]:.2f}×" if r[k] else "-" for k in kinds)]
            for r in ratios]
    if not rows:
        return []
    return ["", tabulate(rows, headers=["pair", "relative to", *kinds], tablefmt="github")]


def tables(report: dict) -> str:
    out = []
    bulk = report.get("bulk")
    if bulk:
        rows = []
        for name, dirs in bulk.items():
            row = [name]
            for d in ("upload", "download"):
                row.append(round(dirs[d]["MBps_median"]))
            for d in ("upload", "download"):
                cpu = dirs[d]["cpu_s_per_GB_median"]
                row.append(" / ".join(f"{cpu[r]:.2f}" for r in ("client", "server") if r in cpu)
                           or "")
            rows.append(row)
        out.append(f"Bulk, {report['config']['bulk_MiB']} MiB per transfer, median of "
                   f"{report['config']['rounds']} rounds (MB/s; CPU s/GB client / server)")
        out.append(tabulate(rows, headers=["pair", "upload", "download", "CPU up", "CPU down"],
                            tablefmt="github"))
        out += ratio_table(report.get("bulk_ratios", []), ("upload", "download"))
    lat = report.get("latency")
    if lat:
        rows = [[name, f"{v['reused']['median_ms']:.2f}", f"{v['reused']['p95_ms']:.2f}",
                 f"{v['new']['median_ms']:.2f}", f"{v['new']['p95_ms']:.2f}"]
                for name, v in lat.items()]
        out.append("")
        out.append(f"Time to first byte of a new stream, {report['config']['ttfb_count']} "
                   "each (ms)")
        out.append(tabulate(rows, headers=["pair", "reused median", "reused p95", "new median",
                                           "new p95"], tablefmt="github"))
        out += ratio_table(report.get("latency_ratios", []), ("reused", "new"))
    conc = report.get("concurrency")
    if conc:
        rows = [[c["pair"], c["streams"], f"{c['open_seconds']:.1f}", round(c["MBps"]), c["errors"],
                 f"{c['peak_rss_MB']['client']:.0f} / {c['peak_rss_MB']['server']:.0f}",
                 f"{c['rss_per_stream_kB']['client']:.0f} / {c['rss_per_stream_kB']['server']:.0f}",
                 " / ".join(f"{c['cpu_s_per_GB'][r]:.2f}" if c['cpu_s_per_GB'][r] else "-"
                            for r in ("client", "server"))]
                for c in conc]
        out.append("")
        out.append("N streams opened, then 1 MiB downloaded on each at once, through one "
                   "client+server pair")
        out.append(tabulate(rows, headers=["pair", "streams", "open s", "MB/s", "errors",
                                           "peak RSS MB c/s", "RSS/stream kB c/s",
                                           "CPU s/GB c/s"], tablefmt="github"))
    return "\n".join(out)


#: each anytls pair with ours in it → the pairs it is measured against (the issue's targets)
REFERENCES = {
    pair_name(OURS, OURS): [pair_name("sing-box", "sing-box"), pair_name("anytls-go", "anytls-go"),
                            "tls-chain", BEFORE],
    pair_name(OURS, "sing-box"): [pair_name("sing-box", "sing-box")],
    pair_name("sing-box", OURS): [pair_name("sing-box", "sing-box")],
    pair_name(OURS, "anytls-go"): [pair_name("anytls-go", "anytls-go")],
    pair_name("anytls-go", OURS): [pair_name("anytls-go", "anytls-go")],
    pair_name(WAIT, OURS): [pair_name("sing-box", "sing-box"), pair_name("anytls-go", "anytls-go")],
    pair_name(WAIT, "anytls-go"): [pair_name("anytls-go", "anytls-go")],
}


def ratios(results: dict, key: str, kinds: tuple[str, str]) -> list[dict]:
    """results[pair][kind][key] of each pair over that of each of its references."""
    return [{"pair": name, "vs": vs, **{
                kind: ratio(results[name][kind][key], results[vs][kind][key]) for kind in kinds}}
            for name, refs in REFERENCES.items() for vs in refs
            if name in results and vs in results]


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a fast check: 32 MiB, 1 round, 50 TTFB samples, 100 streams")
    parser.add_argument("--size", type=int, help="MiB per bulk transfer (default 256)")
    parser.add_argument("--rounds", type=int, help="bulk rounds (default 3)")
    parser.add_argument("--ttfb-count", type=int, help="TTFB samples per kind (default 200)")
    parser.add_argument("--concurrency",
                        help="comma-separated stream counts (default 100,500,1000)")
    parser.add_argument("--concurrency-pairs", default=f"{OURS}:{OURS},anytls-go:anytls-go",
                        help="client:server pairs for the concurrency part")
    parser.add_argument("--pairs", help="comma-separated client:server pairs (default: all)")
    parser.add_argument("--parts", default="bulk,latency,concurrency",
                        help="which parts to run (default all)")
    parser.add_argument("--json", default=str(REPO / "interop" / "bench.json"),
                        help="where to write the JSON report")
    parser.add_argument("--before", metavar="DIR",
                        help="also run anytls_ref from DIR (e.g. `git archive REV anytls_ref | "
                             "tar -x -C DIR`) as the pair anytls_ref@before, for a same-run "
                             "before/after")
    args = parser.parse_args()

    size = (args.size or (32 if args.quick else 256)) * MiB
    rounds = args.rounds or (1 if args.quick else 3)
    ttfb_count = args.ttfb_count or (50 if args.quick else 200)
    levels = [int(x) for x in (args.concurrency or ("100" if args.quick else "100,500,1000"))
              .split(",") if x]
    parts = set(args.parts.split(","))
    pairs = PAIRS
    if args.pairs:
        pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    before_tree = str(Path(args.before).resolve()) if args.before else None
    if before_tree:
        if (BEFORE, BEFORE) not in pairs:
            pairs = [*pairs, (BEFORE, BEFORE)]
    missing = [impl for pair in pairs for impl in pair
               if impl not in (OURS, BEFORE, WAIT, "direct", "tls-chain")
               and not peer_mod.get_peer(impl).installed()]
    if missing:
        log(f"skipping pairs with peers not installed ({', '.join(sorted(set(missing)))}; "
            f"run `make peers`)")
        pairs = [p for p in pairs if not set(p) & set(missing)]

    WORK.mkdir(parents=True, exist_ok=True)
    target_port = free_port()
    setup = Setup(*make_cert(WORK), before_tree=before_tree, target=(LOOPBACK, target_port))
    target_proc = _py_spawn(f"target-{target_port}",
                            [PROCS, "--role", "target", "--port", str(target_port)])
    target = (LOOPBACK, target_port)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "openssl": ssl.OPENSSL_VERSION, "load_at_start": loadavg()},
        "config": {"bulk_MiB": size // MiB, "rounds": rounds, "ttfb_count": ttfb_count,
                   "concurrency": levels},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    log(f"load average {loadavg():.2f} on {os.cpu_count()} CPUs")
    runs: list[Running] = []
    try:
        wait_for_port(LOOPBACK, target_port, 10, target_proc)
        if parts & {"bulk", "latency"}:
            for client, server in pairs:
                log(f"starting {pair_name(client, server)}")
                runs.append(start_pair(client, server, setup))
            time.sleep(0.5)
            for run in runs:  # one stream each first: every pair starts with a warm session
                with open_stream(run, target) as sock:
                    download(sock, MiB)
        if "bulk" in parts:
            report["bulk"] = run_bulk(runs, target, size, rounds)
            report["bulk_ratios"] = ratios(report["bulk"], "MBps_median", ("upload", "download"))
        if "latency" in parts:
            report["latency"] = run_latency(runs, target, ttfb_count)
            report["latency_ratios"] = ratios(report["latency"], "median_ms", ("reused", "new"))
        for run in runs:
            run.stop()
        runs = []
        if "concurrency" in parts:
            report["concurrency"] = []
            for spec in args.concurrency_pairs.split(","):
                pair = tuple(spec.split(":"))
                if set(pair) & set(missing) or any(
                        p not in (OURS, BEFORE, WAIT) and not peer_mod.get_peer(p).installed()
                        for p in pair):
                    continue
                for n in levels:
                    report["concurrency"].append(
                        run_concurrency(pair, target, n, MiB, setup))
                    time.sleep(1)
    finally:
        for run in runs:
            run.stop()
        stop(target_proc)
    report["load_at_end"] = loadavg()
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(tables(report))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
