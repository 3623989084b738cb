"""A real browser through an anytls pair: page-load times in headless Chromium (issue 15 item 3).

The page (``BenchPage``): one HTML document with ``images`` small PNGs (default 40), half from
the page's own origin and half from a second one: two HTTP servers on 127.0.0.1, every response
``Cache-Control: no-store`` so each load fetches everything again. Two kinds of origin:

* ``keep_alive=True`` (CLI ``--connection keep-alive``, the default): HTTP/1.1 keep-alive, as a
  real site. Chromium keeps up to 6 connections per origin open and reuses them from one load
  to the next, so after the warm-up a load opens no new stream: it measures request round
  trips through open streams.
* ``keep_alive=False`` (``--connection close``): HTTP/1.0, one response per connection, so
  every resource of every load opens a new proxied stream: the load shows what opening a stream
  costs (SOCKS5 answer, cmdSYN, session reuse or a new session).

Chromium (Debian's package, ``make bench-deps``) runs headless with a fresh profile and its
traffic for 127.0.0.1 through the pair's SOCKS5 port (``--proxy-bypass-list=<-loopback>``
removes Chromium's implicit loopback bypass). Its own background traffic (component updates,
sign-in: named hosts) is sent direct and failed by a resolver rule, so it neither reaches the
pair nor shares its sessions. One warm-up load, then ``loads`` loads in the same browser; each
timed by the page itself, navigationStart → loadEventEnd (``performance.timing``), and checked
to show every image. Driven over the DevTools protocol (interop/devtools.py, stdlib only).

Per load the report also counts what explains a figure: TCP connections the origins accepted
(= streams Chromium opened) and requests served; with ``sessions`` (a callable returning a
running count, e.g. from the link emulator) the anytls sessions opened; this machine's
accept-queue overflows and SYN retransmits (a dropped SYN costs 1 s); and, in the JSON, each
resource's timings.

    python interop/browser.py --socks 127.0.0.1:1080 [--loads 7]      (a running client)
    python interop/browser.py --pair anytls-go --rtt 100 [--connection close]
        (starts server, interop/linkemu.py at that RTT, and client: bench names, CLIENT/SERVER)

Without chromium it prints one line saying so and exits 0 (a skipped part, not an error).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop.devtools import DevTools, DevToolsError  # noqa: E402

#: Debian's /usr/bin/chromium is a shell wrapper that also exports Google API keys (which make
#: the browser talk to accounts.google.com through the proxy): the binary behind it is used
#: where it exists
CHROMIUM_BINARIES = ("/usr/lib/chromium/chromium",)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: Chromium's own traffic (component updates, safe browsing, variations, sign-in) would go
#: through the pair too and share its sessions with the page: all of it turned off
QUIET_FLAGS = ["--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions",
               "--disable-default-apps", "--disable-breakpad", "--disable-domain-reliability",
               "--disable-client-side-phishing-detection", "--no-pings", "--disable-pings",
               "--disable-component-extensions-with-background-pages",
               "--disable-features=Translate,OptimizationHints,MediaRouter,"
               "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
               "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
               "--disable-gpu", "--mute-audio"]
#: the one line printed where no browser is installed
NO_CHROMIUM = "browser bench skipped: no chromium (install it with `make bench-deps`)"


def find_chromium() -> str | None:
    """$ANYTLS_CHROMIUM if set (a path or name; not found: no browser), else Debian's binary,
    else the first of CHROMIUM_NAMES on PATH."""
    if (chosen := os.environ.get("ANYTLS_CHROMIUM")) is not None:
        return shutil.which(chosen)
    for path in CHROMIUM_BINARIES:
        if shutil.which(path):
            return path
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


# --------------------------------------------------------------------------- the page


def png(seed: int, size: int = 24) -> bytes:
    """A small RGB PNG (about 2 KB), different for every seed."""
    rows = b"".join(b"\x00" + bytes((x * 7 + y * 13 + seed * 29) % 256 for x in range(size * 3))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@functools.lru_cache(maxsize=None)
def _png(seed: int) -> bytes:
    return png(seed)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real site
    timeout = 60  # an idle keep-alive connection is closed after this
    # headers and body are two writes: with Nagle the body would wait for a delayed ACK
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        if not self.server.keep_alive:  # an HTTP/1.0 answer: the connection closes after it
            self.protocol_version = "HTTP/1.0"
        self.server.count("connections")

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self.server.count("requests")
        path = self.path.split("?", 1)[0]
        if path == "/" and self.server.html is not None:
            body, kind = self.server.html, "text/html; charset=utf-8"
        elif path.startswith("/img/") and path.endswith(".png") and path[5:-4].isdigit():
            body, kind = _png(int(path[5:-4])), "image/png"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Timing-Allow-Origin", "*")  # the other origin's timings, too
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


class _Origin(http.server.ThreadingHTTPServer):
    """One HTTP/1.1 origin on 127.0.0.1; counts connections and requests; ``close()`` wakes
    its keep-alive connections and joins every thread."""

    daemon_threads = False
    block_on_close = True
    # socketserver's default backlog is 5: a burst of connects from a server that dials many
    # streams at once overflows it, and each dropped SYN costs a 1 s retransmit (a load of
    # +1 s that is the origin's fault, not the pair's)
    request_queue_size = 1024

    def __init__(self, keep_alive: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keep_alive = keep_alive
        self.port: int = self.server_address[1]
        self.html: bytes | None = None
        self.counts = {"connections": 0, "requests": 0}
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,),
                                        name=f"origin-{self.port}")
        self._thread.start()

    def count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def process_request(self, request, client_address) -> None:
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        self.shutdown()
        self._thread.join()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


class BenchPage:
    """The page and its images on two origins (A serves the page and the even images, B the
    odd ones). ``url`` is the page; ``counts()`` sums both origins' counters. ``keep_alive``:
    HTTP/1.1 keep-alive, else HTTP/1.0 with one response per connection (module docstring).
    """

    def __init__(self, images: int = 40, keep_alive: bool = True) -> None:
        self.origins = (_Origin(keep_alive), _Origin(keep_alive))
        a, b = (f"http://127.0.0.1:{o.port}" for o in self.origins)
        tags = "\n".join(f'<img src="{(a, b)[i % 2]}/img/{i}.png" width="24" height="24">'
                         for i in range(images))
        self.origins[0].html = (f"<!doctype html><html><head><title>anytls-ref browser bench"
                                f"</title></head><body>\n{tags}\n</body></html>\n").encode()
        self.url = f"{a}/"
        self.images = images

    def counts(self) -> dict[str, int]:
        return {k: sum(o.counts[k] for o in self.origins) for k in ("connections", "requests")}

    def __enter__(self) -> BenchPage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for origin in self.origins:
            origin.close()


# --------------------------------------------------------------------------- the browser

#: evaluated after the load event: the page's own timing, and whether every image arrived
LOAD_RESULT_JS = """new Promise(resolve => {
  const done = () => {
    const t = performance.timing;
    if (t.loadEventEnd === 0) { setTimeout(done, 0); return; }
    const images = Array.from(document.images);
    resolve({ms: t.loadEventEnd - t.navigationStart,
             images: images.length,
             complete: images.filter(i => i.complete && i.naturalWidth > 0).length,
             connects: performance.getEntriesByType('resource')
                 .filter(r => r.connectEnd > r.connectStart)
                 .map(r => Math.round(r.connectEnd - r.connectStart)),
             resources: performance.getEntriesByType('resource').map(r => [
                 new URL(r.name).port + new URL(r.name).pathname,
                 ...[r.startTime, r.connectStart, r.requestStart, r.responseStart, r.responseEnd]
                     .map(Math.round)])});
  };
  done();
})"""


class Chromium:
    """Headless Chromium with a fresh profile, its traffic through ``socks`` (HOST, PORT), and
    one DevTools session on its first tab. ``close()`` ends the browser and removes the
    profile."""

    def __init__(self, socks: tuple[str, int] | None, binary: str | None = None,
                 timeout: float = 60.0) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise FileNotFoundError(NO_CHROMIUM)
        self.profile = Path(tempfile.mkdtemp(prefix="anytls-chromium-"))
        argv = [self.binary, "--headless=new", "--no-sandbox", f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0", "--remote-allow-origins=*", *QUIET_FLAGS]
        if socks is not None:
            # <-loopback>: Chromium would fetch 127.0.0.1 directly otherwise. Its own traffic
            # to named hosts goes direct instead, where the resolver rule fails it at once
            argv += [f"--proxy-server=socks5://{socks[0]}:{socks[1]}",
                     "--proxy-bypass-list=<-loopback>;*.com;*.net;*.org",
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
        self._log = open(self.profile.parent / f"{self.profile.name}.log", "wb")
        self.proc = subprocess.Popen([*argv, "about:blank"], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.devtools: DevTools | None = None
        try:
            self.devtools = DevTools(self._page_websocket(timeout), timeout)
            self.devtools.call("Page.enable")
        except BaseException:
            self.close()
            raise
        self.version = self._version()

    def _page_websocket(self, timeout: float) -> str:
        """The first tab's DevTools URL, once the browser has written DevToolsActivePort."""
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DevToolsError(f"chromium exited with {self.proc.returncode}; log "
                                    f"{self._log.name}")
            if active.exists() and len(lines := active.read_text().split()) >= 2:
                port = int(lines[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                            timeout=timeout) as answer:
                    pages = [t for t in json.load(answer) if t.get("type") == "page"]
                if pages:
                    self.devtools_port = port
                    return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise DevToolsError("chromium did not open its DevTools port")
            time.sleep(0.05)

    def _version(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.devtools_port}/json/version",
                                    timeout=10) as answer:
            return json.load(answer).get("Browser", "?")

    def load(self, url: str) -> dict:
        """Navigate to ``url`` and return the page's load result (LOAD_RESULT_JS)."""
        assert self.devtools is not None
        self.devtools.call("Page.navigate", url=url)
        self.devtools.wait_event("Page.loadEventFired")
        result = self.devtools.call("Runtime.evaluate", expression=LOAD_RESULT_JS,
                                    awaitPromise=True, returnByValue=True)
        return result["result"]["value"]

    def close(self) -> None:
        if self.devtools is not None:
            try:
                self.devtools.call("Browser.close")
            except (DevToolsError, OSError):
                pass
            self.devtools.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# --------------------------------------------------------------------------- measuring


@dataclass
class Load:
    ms: float
    #: TCP connections the origins accepted during this load (streams Chromium opened)
    connections: int
    requests: int
    #: anytls sessions the client opened during this load (None: not counted)
    sessions: int | None
    #: this machine's TCP counters during the load (other processes' too): accept-queue
    #: overflows and retransmitted SYNs (a dropped SYN is retried after 1 s)
    listen_overflows: int = 0
    syn_retransmits: int = 0
    #: connect times (ms) of the resources that opened a connection, as the page saw them
    connects: list[int] = field(default_factory=list)
    #: per resource: port + path, then start, connectStart, requestStart, responseStart,
    #: responseEnd in ms from navigationStart (for the JSON: where a slow load lost its time)
    resources: list[list] = field(default_factory=list)


@dataclass
class PageLoads:
    browser: str
    warmup: Load
    loads: list[Load]

    @property
    def times(self) -> list[float]:
        return [load.ms for load in self.loads]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> tuple[float, float]:
        """(min, max) of the timed loads."""
        return min(self.times), max(self.times)

    def summary(self) -> str:
        low, high = self.spread
        return (f"median {self.median:.0f} ms, spread {low:.0f}-{high:.0f} ms; loads "
                + ", ".join(f"{t:.0f}" for t in self.times))


def page_loads(socks: tuple[str, int], loads: int = 7, images: int = 40,
               keep_alive: bool = True, sessions: Callable[[], int] | None = None,
               binary: str | None = None) -> PageLoads:
    """One warm-up load, then ``loads`` timed loads of a fresh BenchPage in one fresh browser."""
    with BenchPage(images, keep_alive) as page:
        browser = Chromium(socks, binary)
        try:
            measured = [_one_load(browser, page, n, sessions) for n in range(loads + 1)]
        finally:
            browser.close()
    return PageLoads(browser.version, measured[0], measured[1:])


def tcp_counters() -> dict[str, int]:
    """ListenOverflows and TCPSynRetrans from /proc/net/netstat (0 where unreadable)."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()
                 if line.startswith("TcpExt:")]
        values = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    except (OSError, IndexError, ValueError):
        values = {}
    return {"listen_overflows": values.get("ListenOverflows", 0),
            "syn_retransmits": values.get("TCPSynRetrans", 0)}


def _one_load(browser: Chromium, page: BenchPage, n: int,
              sessions: Callable[[], int] | None) -> Load:
    before, sessions_before = page.counts(), sessions() if sessions else None
    tcp_before = tcp_counters()
    result = browser.load(f"{page.url}?load={n}")
    after, tcp_after = page.counts(), tcp_counters()
    if result["complete"] != page.images:
        raise RuntimeError(f"load {n}: {result['complete']} of {page.images} images arrived")
    return Load(ms=result["ms"], connections=after["connections"] - before["connections"],
                requests=after["requests"] - before["requests"],
                sessions=None if sessions is None else sessions() - sessions_before,
                **{k: tcp_after[k] - tcp_before[k] for k in tcp_after},
                connects=result["connects"], resources=result["resources"])


# --------------------------------------------------------------------------- command line


class _EmulatorLog:
    """Counts the connections a ``linkemu.py -v`` process reports opening (its stderr)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.opened = 0
        self._thread = threading.Thread(target=self._read, args=(proc,), name="linkemu-log")
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            if line.rstrip().endswith(": open"):
                self.opened += 1

    def join(self) -> None:
        self._thread.join()


def _start_process(argv: list[str]) -> tuple[subprocess.Popen, int]:
    """A process that prints 'listening HOST:PORT' first (linkemu.py)."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    words = proc.stdout.readline().split()
    if len(words) != 2 or words[0] != "listening":
        proc.kill()
        raise RuntimeError(f"{argv[0]} did not start: {proc.stderr.read()}")
    return proc, int(words[1].rsplit(":", 1)[1])


def run_pair(client: str, server: str, rtt_ms: float, loads: int, images: int,
             keep_alive: bool) -> PageLoads:
    """Start server, link emulator (even at RTT 0: it counts sessions) and client; measure."""
    from interop import bench
    from interop.peers import LOOPBACK, free_port, make_cert, stop, wait_for_port

    bench.WORK.mkdir(parents=True, exist_ok=True)
    cert, key = make_cert(bench.WORK)
    server_port, socks_port = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    emulator_log = None
    try:
        procs.append(bench.start_server(server, server_port, cert, key))
        wait_for_port(LOOPBACK, server_port, 15, procs[-1])
        emulator, link_port = _start_process(
            [str(Path(__file__).with_name("linkemu.py")), "--to", f"{LOOPBACK}:{server_port}",
             "--rtt", str(rtt_ms), "-v"])
        procs.append(emulator)
        emulator_log = _EmulatorLog(emulator)
        procs.append(bench.start_client(client, socks_port, link_port))
        wait_for_port(LOOPBACK, socks_port, 15, procs[-1])
        return page_loads((LOOPBACK, socks_port), loads, images, keep_alive,
                          sessions=lambda: emulator_log.opened)
    finally:
        for proc in reversed(procs):
            stop(proc)
        if emulator_log is not None:
            emulator_log.join()


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def _print(label: str, result: PageLoads) -> None:
    print(f"{label}: {result.summary()}")
    for n, load in enumerate([result.warmup, *result.loads]):
        sessions = "" if load.sessions is None else f", {load.sessions} new sessions"
        print(f"  {'warm-up' if n == 0 else f'load {n}'}: {load.ms:.0f} ms, "
              f"{load.connections} new connections at the origins{sessions}, "
              f"{load.requests} requests, {load.syn_retransmits} SYN retransmits and "
              f"{load.listen_overflows} accept-queue overflows on this machine")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"browser.py: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="browser.py", description="Page-load times in headless Chromium "
                     "through a SOCKS5 proxy (an anytls client).")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--socks", type=_address, help="HOST:PORT of a running client")
    target.add_argument("--pair", help="CLIENT[/SERVER] implementations to start (bench names, "
                        "e.g. anytls_ref, anytls-go, anytls_ref/anytls-go)")
    parser.add_argument("--rtt", type=float, default=0.0,
                        help="with --pair: RTT in ms of the link emulator between client and "
                        "server (default 0)")
    parser.add_argument("--loads", type=int, default=7, help="timed loads after the warm-up")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--connection", choices=["keep-alive", "close"], default="keep-alive",
                        help="close: the origins answer HTTP/1.0 and close, so every "
                        "resource opens a new stream (default keep-alive)")
    parser.add_argument("--json", type=Path, help="also write the loads here")
    args = parser.parse_args(argv)
    if args.loads < 1 or args.images < 1 or args.rtt < 0:
        parser.error("--loads and --images must be >= 1, --rtt >= 0")
    if find_chromium() is None:
        print(NO_CHROMIUM)
        return 0
    keep_alive = args.connection == "keep-alive"
    if args.socks:
        label = f"socks {args.socks[0]}:{args.socks[1]}, {args.connection}"
        result = page_loads(args.socks, args.loads, args.images, keep_alive)
    else:
        client, _, server = args.pair.partition("/")
        label = f"{client}→{server or client} at RTT {args.rtt:g} ms, {args.connection}"
        result = run_pair(client, server or client, args.rtt, args.loads, args.images,
                          keep_alive)
    print(result.browser)
    _print(label, result)
    if args.json:
        args.json.write_text(json.dumps({"label": label, "browser": result.browser,
                                         "warmup": result.warmup.__dict__,
                                         "loads": [x.__dict__ for x in result.loads]},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
