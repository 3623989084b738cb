"""A real browser in the bench (issue 15 item 3): headless Chromium loads a page of many small
images on two origins through a SOCKS5 proxy; the page-load times (navigationStart to
loadEventEnd) show what a proxy's cost per connection means to a user.

* ``PageSite``: two HTTP servers on 127.0.0.1 (two ports, so two origins); the page on the first
  has ``images`` small PNGs, half from each. Every response says ``Cache-Control: no-store`` and
  the page's URL changes per load, so nothing comes from the browser's cache. Responses are
  HTTP/1.0, closed after each one, so every resource is a new connection through the proxy (the
  cost the issue is about); ``keep_alive=True`` serves HTTP/1.1 instead, and the browser then
  reuses its connections (at most 6 per origin).
* ``Browser``: headless Chromium (``--headless=new --no-sandbox``, a fresh profile) whose every
  request goes through ``socks5://127.0.0.1:PORT``: ``--proxy-bypass-list=<-loopback>`` takes
  away its built-in bypass for loopback addresses. It is driven through the DevTools protocol
  (``--remote-debugging-port``) by ``DevTools``, a minimal websocket client: the standard library
  has none, and the 60 lines here are less to carry than a package (websockets, or a CDP driver
  such as pyppeteer/playwright, which brings its own browser build) for one request-and-answer
  loop; it only talks to the local browser.
* ``page_loads(socks_port)``: one warm-up load, then ``loads`` loads in the same browser; their
  times in ms. ``python interop/browser.py --socks PORT`` prints them, and ``--ours [--rtt MS]
  [--wait-synack]`` starts our own client and server (``python -m anytls_ref``) first, with the link
  emulator between them at that RTT, and loads through that pair; ``--direct`` loads without a
  proxy (what the browser and the page cost by themselves).

Chromium comes from Debian's package (``make bench-deps``: apt-get install chromium); it cannot be
downloaded by the bench. Where it is absent, ``chromium()`` is None and the CLI says so in one
line and exits 0 (that part of the bench is skipped, not failed).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop import peers as peer_mod  # noqa: E402
from interop.linkemu import LinkEmulator  # noqa: E402
from interop.peers import LOOPBACK, free_port, stop, wait_for_port  # noqa: E402

#: the names Debian's and other distributions' packages install it under
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: how long one page load may take before it counts as failed
LOAD_TIMEOUT = 60.0
MISSING = "browser: chromium not found (install it with `make bench-deps`); browser loads skipped"


def chromium() -> str | None:
    """The Chromium to run: $CHROMIUM, else the first of CHROMIUM_NAMES on PATH; None if none."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


# --------------------------------------------------------------------------- the page


def small_png(seed: int, size: int = 24) -> bytes:
    """A size x size RGB PNG of noise (about 1.7 KB: noise does not compress)."""
    noise = bytes((seed * 7919 + i * 104729) % 251 for i in range(size * size * 3))
    rows = b"".join(b"\x00" + noise[y * size * 3:(y + 1) * size * 3] for y in range(size))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


class _Origin(http.server.ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a server that dials a load's streams in one
    # burst overflows it, and each dropped SYN is retried only after 1 s (a load 1 s slower by
    # the origin's fault). Measured: with a backlog of 1, 4-13 overflows per load for the
    # anytls-go pair (loads of 1.6-2.4 s instead of 0.8) against 0-2 for ours; with 5, none in
    # 30 loads here (a loaded machine spreads the dials out).
    request_queue_size = 1024


class PageSite:
    """Two origins on 127.0.0.1 serving one page of ``images`` images, half from each.
    ``url(n)`` is the page's URL for load n. A context manager; ``close()`` joins every thread."""

    def __init__(self, images: int = 40, *, keep_alive: bool = False) -> None:
        self.images = images
        site = self
        pngs = [small_png(i) for i in range(images)]

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            # headers and body are two writes: with Nagle the body would wait for the ACK of
            # the headers, which the receiver delays by up to 40 ms
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
                path, _, query = self.path.partition("?")
                if path == "/":
                    body, kind = site.page(query).encode(), "text/html"
                elif path.startswith("/img/") and path[5:-4].isdigit() and \
                        int(path[5:-4]) < len(pngs):
                    body, kind = pngs[int(path[5:-4])], "image/png"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Timing-Allow-Origin", "*")  # resource timings of both origins
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # quiet
                pass

        self._servers = [_Origin((LOOPBACK, 0), Handler) for _ in "ab"]
        self.origins = [f"http://{LOOPBACK}:{s.server_address[1]}" for s in self._servers]
        self._threads = [threading.Thread(target=s.serve_forever, name=f"page-site-{i}")
                         for i, s in enumerate(self._servers)]
        for thread in self._threads:
            thread.start()

    def page(self, query: str) -> str:
        images = "\n".join(
            f'<img src="{self.origins[i % 2]}/img/{i}.png?{query}" width="24" height="24">'
            for i in range(self.images))
        return f"<!doctype html><title>bench page</title><body>\n{images}\n</body>\n"

    def url(self, n: int) -> str:
        return f"{self.origins[0]}/?load={n}"

    def __enter__(self) -> PageSite:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()  # block_on_close: joins the request threads
        for thread in self._threads:
            thread.join()


# --------------------------------------------------------------------------- DevTools protocol


class DevTools:
    """A websocket client for one DevTools target (RFC 6455, client side, text messages only)."""

    def __init__(self, ws_url: str, timeout: float = LOAD_TIMEOUT) -> None:
        hostport, _, path = ws_url.removeprefix("ws://").partition("/")
        host, _, port = hostport.rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self._sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self._file = self._sock.makefile("rb")
        status = self._file.readline()
        if b" 101 " not in status:
            raise ConnectionError(f"DevTools websocket refused: {status!r}")
        while self._file.readline() not in (b"\r\n", b""):
            pass
        self._next_id = 0

    def call(self, method: str, params: dict | None = None) -> dict:
        """Send a command and return its result; events that arrive meanwhile are dropped."""
        self._next_id += 1
        self._send(json.dumps({"id": self._next_id, "method": method, "params": params or {}}))
        while True:
            message = self._receive()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def wait_for(self, event: str) -> dict:
        while (message := self._receive()).get("method") != event:
            pass
        return message["params"]

    def _send(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        length = len(payload)
        header = bytes([0x81])  # FIN, text
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))  # a client must mask
        self._sock.sendall(header + mask + masked)

    def _receive(self) -> dict:
        """The next whole text message, as JSON (pings answered, fragments joined)."""
        parts: list[bytes] = []
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)  # a server does not mask
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            if opcode == 0x9:  # ping → pong
                self._sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if opcode in (0x0, 0x1):
                parts.append(payload)
                if first & 0x80:
                    return json.loads(b"".join(parts))

    def _read(self, n: int) -> bytes:
        data = self._file.read(n)
        if len(data) < n:
            raise ConnectionError("DevTools websocket ended")
        return data

    def close(self) -> None:
        self._file.close()
        self._sock.close()


# --------------------------------------------------------------------------- the browser

#: resolves once the load event has ended: its time from navigationStart, and the images shown
MEASURE = """new Promise(done => { const check = () => {
  const nav = performance.getEntriesByType("navigation")[0];
  if (nav && nav.loadEventEnd > 0) done({ms: nav.loadEventEnd - nav.startTime,
    images: [...document.images].filter(i => i.complete && i.naturalWidth > 0).length});
  else setTimeout(check, 1); }; check(); })"""


class LoadError(Exception):
    """A page did not load whole (an error page, or images missing)."""


@dataclass
class PageLoad:
    ms: float
    images: int


class Browser:
    """Headless Chromium with a fresh profile, every request through socks5://127.0.0.1:PORT
    (``socks_port`` None: no proxy, the browser's own floor). ``load(url)`` navigates its one tab
    and returns the page-load time. A context manager; ``close()`` ends the browser (its whole
    process group) and removes the profile."""

    def __init__(self, socks_port: int | None, *, executable: str | None = None,
                 log_path: Path | None = None) -> None:
        executable = executable or chromium()
        if executable is None:
            raise FileNotFoundError(MISSING)
        self._profile = tempfile.TemporaryDirectory(prefix="anytls-bench-chromium-")
        argv = [executable, "--headless=new", "--no-sandbox", "--disable-gpu",
                f"--user-data-dir={self._profile.name}", "--remote-debugging-port=0",
                # as little of its own on the network as flags allow (the rest: below)
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--disable-default-apps", "--mute-audio", "about:blank"]
        if socks_port is not None:
            # Even with the flags above, Chromium fetches from named hosts of its own
            # (accounts.google.com, update.googleapis.com, clients2.google.com: Debian's wrapper
            # exports Google API keys), which would take streams and sessions of the pair from
            # the page: they go direct instead, and the resolver rule fails them at once. The
            # page's origins are 127.0.0.1, proxied since <-loopback> removes the built-in
            # bypass for loopback.
            argv[1:1] = [f"--proxy-server=socks5://{LOOPBACK}:{socks_port}",
                         "--proxy-bypass-list=<-loopback>;*.com;*.net;*.org",
                         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
        log = open(log_path or os.devnull, "wb")
        # a session of its own: close() ends the renderers and helpers with it
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        log.close()
        try:
            self.tab = DevTools(self._page_target(self._devtools_port()))
            self.tab.call("Page.enable")
        except BaseException:
            self.close()
            raise

    def _devtools_port(self) -> int:
        """Chromium writes the port it chose into the profile's DevToolsActivePort."""
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode} at start")
            lines = port_file.read_text().split() if port_file.exists() else []
            if lines:
                return int(lines[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port in 30 s")

    @staticmethod
    def _page_target(port: int) -> str:
        http_conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        try:
            http_conn.request("GET", "/json/list")
            targets = json.loads(http_conn.getresponse().read())
        finally:
            http_conn.close()
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def load(self, url: str, images: int) -> PageLoad:
        """Load ``url`` (a page of ``images`` images); LoadError unless all of it arrived."""
        navigation = self.tab.call("Page.navigate", {"url": url})
        if "errorText" in navigation:
            raise LoadError(f"{url}: {navigation['errorText']}")
        self.tab.wait_for("Page.loadEventFired")
        result = self.tab.call("Runtime.evaluate", {"expression": MEASURE, "awaitPromise": True,
                                                    "returnByValue": True})["result"]["value"]
        if result["images"] != images:
            raise LoadError(f"{url}: {result['images']} of {images} images loaded")
        return PageLoad(ms=result["ms"], images=result["images"])

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "tab", None) is not None:
            self.tab.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._profile.cleanup()


def page_loads(socks_port: int | None, *, loads: int = 7, warmup: int = 1, images: int = 40,
               keep_alive: bool = False, log_path: Path | None = None) -> list[float]:
    """Page-load times (ms) of ``loads`` loads through the SOCKS5 proxy on ``socks_port`` (None:
    direct), after ``warmup`` loads in the same browser. FileNotFoundError(MISSING) without
    Chromium."""
    with PageSite(images, keep_alive=keep_alive) as site, \
            Browser(socks_port, log_path=log_path) as browser:
        times = [browser.load(site.url(n), images).ms for n in range(warmup + loads)]
    return times[warmup:]


# --------------------------------------------------------------------------- command line


def start_ours(rtt_ms: float, wait_synack: bool, workdir: Path) -> tuple[list, int]:
    """Our server and client (and, for rtt_ms > 0, the link emulator between them): the things
    to close, and the client's SOCKS5 port."""
    password = "browser-bench"
    server_port, socks_port = free_port(), free_port()
    ours = [sys.executable, "-m", "anytls_ref", "--log-level", "warning"]
    server = peer_mod._spawn("server", [*ours, "server", "-l", f"{LOOPBACK}:{server_port}",
                                        "-p", password], workdir)
    things: list = [server]
    try:
        wait_for_port(LOOPBACK, server_port, proc=server)
        target = (LOOPBACK, server_port)
        if rtt_ms:
            link = LinkEmulator(target, one_way_delay=rtt_ms / 2000)
            things.append(link)
            target = link.address
        things.append(peer_mod._spawn("client", [
            *ours, "client", "-l", f"{LOOPBACK}:{socks_port}", "-s", f"{target[0]}:{target[1]}",
            "-p", password, "--insecure", "--sni", "localhost",
            *(["--wait-synack"] if wait_synack else [])], workdir))
        wait_for_port(LOOPBACK, socks_port, proc=things[-1])
    except BaseException:
        close_all(things)
        raise
    return things, socks_port


def close_all(things: list) -> None:
    for thing in reversed(things):
        if isinstance(thing, subprocess.Popen):
            stop(thing)
        else:
            thing.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--socks", type=int, metavar="PORT", help="a SOCKS5 proxy on 127.0.0.1")
    target.add_argument("--direct", action="store_true", help="no proxy: the browser's floor")
    target.add_argument("--ours", action="store_true",
                        help="start our client and server (python -m anytls_ref) and use them")
    parser.add_argument("--rtt", type=float, default=0.0,
                        help="with --ours: the link emulator's RTT in ms between them")
    parser.add_argument("--wait-synack", action="store_true",
                        help="with --ours: client --wait-synack (D34)")
    parser.add_argument("--loads", type=int, default=7, help="measured loads (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="loads first (default 1)")
    parser.add_argument("--images", type=int, default=40, help="images per page (default 40)")
    parser.add_argument("--keep-alive", action="store_true",
                        help="HTTP/1.1 keep-alive (default: a new connection per resource)")
    args = parser.parse_args()
    if chromium() is None:
        print(MISSING)
        return 0
    with tempfile.TemporaryDirectory(prefix="anytls-browser-") as workdir:
        things, port = start_ours(args.rtt, args.wait_synack, Path(workdir)) if args.ours \
            else ([], args.socks)  # None with --direct
        try:
            times = page_loads(port, loads=args.loads, warmup=args.warmup, images=args.images,
                               keep_alive=args.keep_alive)
        except LoadError as exc:
            print(f"browser: {exc}", file=sys.stderr)
            return 1
        finally:
            close_all(things)
    print("page loads (ms): " + ", ".join(f"{t:.0f}" for t in times))
    print(f"median {statistics.median(times):.0f} ms, min {min(times):.0f}, max {max(times):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
