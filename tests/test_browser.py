"""The bench's browser harness (interop/browser.py): the page it serves, and, where Chromium is
installed (``make bench-deps``), a load through our own SOCKS5 proxy and a load that fails."""

from __future__ import annotations

import http.client
import logging
import re
import zlib

import pytest

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import ProxyInbound
from interop import browser
from interop.peers import LOOPBACK, free_port

PASSWORD = "browser-test"


def get(origin: str, path: str) -> http.client.HTTPResponse:
    host, port = origin.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_the_page_has_its_images_on_two_origins_and_nothing_is_cacheable():
    with browser.PageSite(6) as site:
        page = get(site.origins[0], "/?load=3")
        sources = re.findall(r'<img src="([^"]+)"', page.body.decode())
        assert len(sources) == 6
        assert {s.rsplit("/img/", 1)[0] for s in sources} == set(site.origins)
        assert len(set(site.origins)) == 2
        assert all(s.endswith("?load=3") for s in sources)  # a new URL per load
        image = get(site.origins[1], "/img/5.png")
        assert image.getheader("Cache-Control") == "no-store"
        assert page.getheader("Cache-Control") == "no-store"
        assert image.getheader("Content-Type") == "image/png"
        assert get(site.origins[0], "/img/6.png").status == 404


def test_the_images_are_valid_pngs():
    png = browser.small_png(3)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    assert len(zlib.decompress(idat)) == 24 * (1 + 24 * 3)  # one filter byte per row


@pytest.fixture
def chromium_present() -> None:
    if browser.chromium() is None:
        pytest.skip(browser.MISSING)


def test_a_page_loads_through_our_proxy(chromium_present, tmp_path):
    things, socks_port = browser.start_ours(0, False, tmp_path)
    try:
        times = browser.page_loads(socks_port, loads=2, warmup=1, images=4)
    finally:
        browser.close_all(things)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_the_proxy_carries_the_page_and_nothing_else(chromium_present, make_server, caplog):
    """Chromium's own requests (to Google's hosts) would share the pair's sessions with the
    page: every stream our server opens is to one of the page's origins."""
    caplog.set_level(logging.DEBUG, logger="anytls_ref.server")
    server = make_server()
    client = Client(ClientConfig(server=server.address, password=PASSWORD, insecure=True))
    with ProxyInbound((LOOPBACK, 0), client) as proxy:
        browser.page_loads(proxy.address[1], loads=1, warmup=1, images=4)
    targets = [re.search(r"(?:dial|connected to) (\S+?):?\d*(?: failed|$)", r.getMessage())
               for r in caplog.records if r.name == "anytls_ref.server"]
    dialled = {m.group(1) for m in targets if m}
    assert server.stats.streams >= 10
    assert dialled == {LOOPBACK}


def test_a_load_the_proxy_cannot_carry_is_an_error(chromium_present):
    with pytest.raises(browser.LoadError):
        browser.page_loads(free_port(), loads=1, warmup=0, images=4)  # no proxy there


def test_no_chromium_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("CHROMIUM", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("sys.argv", ["browser.py", "--socks", str(free_port())])
    assert browser.chromium() is None
    assert browser.main() == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "chromium not found" in out
