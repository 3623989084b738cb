"""The browser bench's harness (interop/browser.py): its test page and, where Chromium is
installed, one page load through our own pair. ``make test`` needs no browser: without one the
end-to-end test is skipped and the CLI says so in one line."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path

import pytest

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import ProxyInbound
from interop.browser import NO_CHROMIUM, BenchPage, find_chromium, page_loads, png

BROWSER = Path(__file__).resolve().parent.parent / "interop" / "browser.py"
PASSWORD = "password"


def test_png_is_a_valid_image():
    data = png(3)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    length = int.from_bytes(data[8:12], "big")
    assert data[12:16] == b"IHDR" and length == 13
    assert zlib.crc32(data[12:16 + length]) == int.from_bytes(data[16 + length:20 + length],
                                                              "big")
    assert png(3) != png(4)


def test_page_has_its_images_on_two_origins():
    with BenchPage(images=10) as page:
        with urllib.request.urlopen(page.url, timeout=5) as answer:
            html = answer.read().decode()
            assert answer.headers["Cache-Control"] == "no-store"
        sources = re.findall(r'src="([^"]+)"', html)
        assert len(sources) == 10
        assert len({src.rsplit("/img/", 1)[0] for src in sources}) == 2
        for src in sources[:2]:
            with urllib.request.urlopen(src, timeout=5) as answer:
                assert answer.read().startswith(b"\x89PNG")
        assert page.counts() == {"connections": 3, "requests": 3}


@pytest.mark.parametrize("keep_alive, connections", [(True, 1), (False, 2)])
def test_keep_alive_or_close(keep_alive, connections):
    """Two requests on one connection: kept alive, both are answered on it; with
    keep_alive=False the origin closes after the first."""
    with BenchPage(images=2, keep_alive=keep_alive) as page:
        port = page.origins[0].port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /img/0.png HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /img/2.png HTTP/1.1\r\nHost: x\r\n\r\n")
            answers = b""
            while answers.count(b"IEND") < 2 and (data := sock.recv(1 << 16)):
                answers += data
        assert answers.count(b"HTTP/1.") == (2 if keep_alive else 1)
        assert page.counts()["connections"] == 1


def test_cli_without_chromium_says_so_in_one_line():
    result = subprocess.run([sys.executable, str(BROWSER), "--socks", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=30,
                            env={"PATH": os.environ["PATH"], "ANYTLS_CHROMIUM": "/nonexistent"})
    assert result.returncode == 0
    assert result.stdout.strip() == NO_CHROMIUM


@pytest.mark.skipif(find_chromium() is None, reason="no chromium (make bench-deps)")
def test_page_loads_through_our_pair(make_server):
    server = make_server()
    client = Client(ClientConfig(server=server.address, password=PASSWORD, insecure=True))
    with ProxyInbound(("127.0.0.1", 0), client) as proxy:
        result = page_loads(proxy.address, loads=1, images=4, keep_alive=False)
    assert len(result.loads) == 1 and result.loads[0].ms > 0
    # every connection to the origins came through our server: the browser bypassed nothing
    # for loopback (keep_alive=False: one connection per request; a stream more is a socket
    # Chromium preconnected after the last load)
    origin_connections = sum(load.connections for load in (result.warmup, *result.loads))
    assert origin_connections >= 10
    assert server.stats.streams >= origin_connections
