"""The bench over an emulated wide-area link (issue 15): ``make bench-wan``, ``make bench-browser``.

Loopback hides what a round trip costs (0.05 ms here); users sit behind 20-100 ms. Every pair of
the loopback bench (bench.py) runs again with the link emulator (linkemu.py) between its client
and its server (for ``direct``, between the bench and the target), at each setting of --link
(``RTT`` or ``RTT/MBIT``: default 20, 20/100, 100, 100/100):

* first byte: SOCKS5 connect, a 1-byte request, its answer, on a reused session (median of
  --ttfb-count) and on a new one (the earlier streams held open, so no session is idle);
* sequential requests: --requests short requests one after another, each a new connection
  (connect, a request, a 16 KiB answer, close): what a browser that opens a connection per
  resource does; the total time, and per request;
* bulk (settings without a rate cap only): --size MiB upload and download through a per-
  direction window of --window bytes, so one connection is bounded by window / RTT as on a real
  link (the emulator counts a byte in flight until its acknowledgement would be back).

The emulator charges the TCP handshake to the server one RTT (``handshake=True``), so a new
session costs what it would on a real link: TCP, TLS and the stream's round trips. Every figure
is also given in round trips of the setting. ``--browser`` instead loads a page of 40 images on
two origins in headless Chromium through each anytls pair at 0, 20 and 100 ms (browser.py; one
warm-up load, then --loads), median and spread.

    .venv/bin/python interop/bench_wan.py [--link 100,100/100] [--pairs c:s,...] [--browser]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop import bench  # noqa: E402
from interop import peers as peer_mod  # noqa: E402
from interop.bench import OURS, WAIT, Running, Setup, log, pair_name  # noqa: E402
from interop.bench_procs import HEADER, MODE_DOWNLOAD, MiB  # noqa: E402
from interop.linkemu import LinkEmulator, binary  # noqa: E402

#: what a short request fetches (an image or a small page)
ANSWER = 16 * 1024
DEFAULT_LINKS = "20,20/100,100,100/100"
#: the pairs of the browser part: what a user runs
BROWSER_PAIRS = [(OURS, OURS), (WAIT, OURS), ("anytls-go", "anytls-go"), (OURS, "anytls-go"),
                 ("sing-box", "sing-box")]
BROWSER_RTTS = (0, 20, 100)


def parse_link(text: str) -> tuple[float, float | None]:
    """``RTT`` or ``RTT/MBIT`` → (RTT in ms, rate in Mbit/s or None)."""
    rtt, _, rate = text.partition("/")
    return float(rtt), (float(rate) if rate else None)


def link_name(rtt_ms: float, rate: float | None) -> str:
    return f"{rtt_ms:g} ms" + (f", {rate:g} Mbit/s" if rate else "")


def emulator(rtt_ms: float, rate_mbit: float | None, window: int | None):
    """A factory for bench.start_pair: the emulator in front of a port."""
    def make(port: int) -> LinkEmulator:
        return LinkEmulator((bench.LOOPBACK, port), one_way_delay=rtt_ms / 2000,
                            rate=rate_mbit * 125_000 if rate_mbit else None, window=window,
                            handshake=True)
    return make


def sequential(run: Running, target: tuple[str, int], count: int) -> float:
    """Seconds for ``count`` short requests, one new connection each."""
    buf = memoryview(bytearray(ANSWER))
    start = time.perf_counter()
    for _ in range(count):
        with bench.open_stream(run, target) as sock:
            sock.sendall(HEADER.pack(MODE_DOWNLOAD, ANSWER))
            got = 0
            while got < ANSWER:
                n = sock.recv_into(buf[got:])
                if not n:
                    raise ConnectionError(f"closed after {got} of {ANSWER} bytes")
                got += n
    return time.perf_counter() - start


def first_bytes(run: Running, target: tuple[str, int], count: int) -> dict:
    reused = []
    for _ in range(count):
        t, sock = bench.ttfb_once(run, target)
        sock.close()
        reused.append(t)
        time.sleep(0.05)  # the close reaches the client, which pools the session
    new, held = [], []
    try:
        for _ in range(max(5, count // 2)):
            t, sock = bench.ttfb_once(run, target)
            held.append(sock)
            new.append(t)
    finally:
        for sock in held:
            sock.close()
    return {"reused_ms": statistics.median(reused) * 1e3, "new_ms": statistics.median(new) * 1e3}


def run_setting(pairs, setup: Setup, rtt_ms: float, rate: float | None, args) -> dict:
    window = None if rate else args.window
    out = {}
    for client, server in pairs:
        name = pair_name(client, server)
        run = bench.start_pair(client, server, setup, emulator(rtt_ms, rate, window))
        try:
            time.sleep(0.3)
            with bench.open_stream(run, setup.target) as sock:  # a warm session first
                bench.download(sock, 64 * 1024)
            time.sleep(0.1)
            res = first_bytes(run, setup.target, args.ttfb_count)
            res["sequential_s"] = sequential(run, setup.target, args.requests)
            if rate is None and args.size:
                for direction in ("upload", "download"):
                    res[direction + "_MBps"] = bench.bulk_once(
                        run, setup.target, direction, args.size * MiB)["MBps"]
            res["load"] = bench.loadavg()
            out[name] = res
            log(f"[{link_name(rtt_ms, rate)}] {name:<26} first byte reused "
                f"{res['reused_ms']:6.1f} ms, new {res['new_ms']:6.1f} ms; {args.requests} "
                f"requests {res['sequential_s']:6.2f} s"
                + (f"; bulk up {res['upload_MBps']:.1f} down {res['download_MBps']:.1f} MB/s"
                   if "upload_MBps" in res else "") + f"  (load {res['load']:.2f})")
        finally:
            run.stop()
    return out


def wan_tables(report: dict) -> str:
    out = []
    for setting in report["settings"]:
        rtt = setting["rtt_ms"]
        rows = []
        for name, r in setting["pairs"].items():
            per = r["sequential_s"] / report["config"]["requests"] * 1e3
            row = [name, f"{r['reused_ms']:.1f} ({r['reused_ms'] / rtt:.2f})",
                   f"{r['new_ms']:.1f} ({r['new_ms'] / rtt:.2f})",
                   f"{r['sequential_s']:.2f} s ({per / rtt:.2f})"]
            if "upload_MBps" in r:
                row += [f"{r['upload_MBps']:.1f}", f"{r['download_MBps']:.1f}"]
            rows.append(row)
        headers = ["pair", "first byte, reused: ms (RTTs)", "new session: ms (RTTs)",
                   f"{report['config']['requests']} requests (RTTs each)"]
        if setting.get("bound_MBps"):
            headers += ["upload MB/s", "download MB/s"]
        title = f"Link {setting['name']}"
        if setting.get("bound_MBps"):
            title += (f"; bulk {report['config']['size_MiB']} MiB through a "
                      f"{report['config']['window'] // MiB} MiB window (window/RTT "
                      f"{setting['bound_MBps']:.1f} MB/s)")
        out += ["", title, tabulate(rows, headers=headers, tablefmt="github")]
    return "\n".join(out)


def run_browser(pairs, setup: Setup, args) -> dict:
    from interop import browser

    if browser.chromium() is None:
        log(f"browser part skipped: {browser.MISSING}")
        return {}
    out: dict = {}
    for rtt_ms in BROWSER_RTTS:
        for client, server in pairs:
            name = pair_name(client, server)
            link = emulator(rtt_ms, None, None) if rtt_ms else None
            run = bench.start_pair(client, server, setup, link)
            try:
                times = browser.page_loads(run.socks_port, loads=args.loads, warmup=1)
            finally:
                run.stop()
            out.setdefault(f"{rtt_ms} ms", {})[name] = {
                "loads_ms": [round(t) for t in times], "median_ms": statistics.median(times),
                "min_ms": min(times), "max_ms": max(times)}
            log(f"[browser {rtt_ms} ms] {name:<26} median {statistics.median(times):6.0f} ms  "
                f"({', '.join(f'{t:.0f}' for t in times)})  load {bench.loadavg():.2f}")
    return out


def browser_table(results: dict) -> str:
    rows = [[rtt, name, f"{r['median_ms']:.0f}", f"{r['min_ms']:.0f}-{r['max_ms']:.0f}",
             " ".join(str(t) for t in r["loads_ms"])]
            for rtt, pairs in results.items() for name, r in pairs.items()]
    return tabulate(rows, headers=["RTT", "pair", "median ms", "spread", "loads (ms)"],
                    tablefmt="github")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--link", default=DEFAULT_LINKS,
                        help=f"RTT or RTT/MBIT settings, comma-separated (default {DEFAULT_LINKS})")
    parser.add_argument("--pairs", help="comma-separated client:server pairs (default: all)")
    parser.add_argument("--ttfb-count", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--size", type=int, default=256, help="MiB per bulk transfer (0: none)")
    parser.add_argument("--window", type=int, default=4 * MiB)
    parser.add_argument("--browser", action="store_true", help="the Chromium part instead")
    parser.add_argument("--loads", type=int, default=7, help="page loads per pair (browser)")
    parser.add_argument("--json", default=str(bench.REPO / "interop" / "bench-wan.json"))
    args = parser.parse_args()
    if binary() is None:
        log("the link emulator is not built: run `make peers`")
        return 2
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")] if args.pairs else (
        BROWSER_PAIRS if args.browser else bench.PAIRS)
    pairs = [p for p in pairs if all(
        impl in (OURS, WAIT, "direct", "tls-chain") or peer_mod.get_peer(impl).installed()
        for impl in p)]
    bench.WORK.mkdir(parents=True, exist_ok=True)
    target_port = bench.free_port()
    setup = Setup(*bench.make_cert(bench.WORK), target=(bench.LOOPBACK, target_port))
    target_proc = bench._py_spawn(f"target-{target_port}", [bench.PROCS, "--role", "target",
                                                            "--port", str(target_port)])
    report: dict = {"load_at_start": bench.loadavg(),
                    "config": {"requests": args.requests, "ttfb_count": args.ttfb_count,
                               "size_MiB": args.size, "window": args.window},
                    "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        bench.wait_for_port(bench.LOOPBACK, target_port, 10, target_proc)
        if args.browser:
            report["browser"] = run_browser(pairs, setup, args)
        else:
            report["settings"] = []
            for text in args.link.split(","):
                rtt_ms, rate = parse_link(text)
                report["settings"].append({
                    "name": link_name(rtt_ms, rate), "rtt_ms": rtt_ms, "rate_Mbit": rate,
                    "bound_MBps": None if rate else args.window / (rtt_ms / 1e3) / 1e6,
                    "pairs": run_setting(pairs, setup, rtt_ms, rate, args)})
    finally:
        bench.stop(target_proc)
    report["load_at_end"] = bench.loadavg()
    path = Path(args.json if not args.browser else args.json.replace(".json", "-browser.json"))
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(browser_table(report["browser"]) if args.browser else wan_tables(report))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
