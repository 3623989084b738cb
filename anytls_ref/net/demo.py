"""``anytls-ref demo``: the main job on loopback, start to finish, in a few seconds.

Starts a small HTTP site, an anytls server and an anytls client (SOCKS5 + HTTP proxy), fetches
the page through the SOCKS5 port and through the HTTP proxy, prints what travelled, and stops
everything. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request

from .socks_client import socks5_connect

PAGE = b"<html><body><h1>Hello through anytls</h1></body></html>\n"


class _Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:  # keep the demo output readable
        pass


def socks5_get(proxy: tuple[str, int], target: tuple[str, int]) -> bytes:
    """An HTTP GET through the SOCKS5 proxy at ``proxy``, the whole response."""
    with socks5_connect(proxy, target, timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def run_demo(trace: bool = False) -> int:
    from .client import Client, ClientConfig
    from .inbound import ProxyInbound
    from .server import Server, ServerConfig

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    site_thread = threading.Thread(target=site.serve_forever, name="demo-site")
    site_thread.start()
    target = site.server_address[:2]
    started = time.monotonic()
    try:
        with Server(ServerConfig(("127.0.0.1", 0), "demo-password", trace=trace)) as server:
            client = Client(ClientConfig(server.address, "demo-password", insecure=True,
                                         trace=trace))
            with ProxyInbound(("127.0.0.1", 0), client) as inbound:
                print(f"site     http://{target[0]}:{target[1]}/")
                print(f"server   anytls on {server.address[0]}:{server.address[1]}"
                      " (self-signed certificate)")
                print(f"client   SOCKS5 + HTTP proxy on {inbound.address[0]}:{inbound.address[1]}")
                print()
                response = socks5_get(inbound.address, target)
                ok_socks = response.endswith(PAGE)
                status_line = response.split(b"\r\n")[0].decode()
                print(f"1. GET via SOCKS5      → {status_line}, "
                      f"page {'intact' if ok_socks else 'WRONG'}")
                proxy = urllib.request.ProxyHandler(
                    {"http": f"http://{inbound.address[0]}:{inbound.address[1]}"})
                with urllib.request.build_opener(proxy).open(
                        f"http://{target[0]}:{target[1]}/", timeout=10) as page:
                    body = page.read()
                    ok_http = body == PAGE
                    print(f"2. GET via HTTP proxy  → HTTP {page.status}, "
                          f"page {'intact' if ok_http else 'WRONG'}")
    finally:
        site.shutdown()
        site.server_close()
        site_thread.join()
    # printed after every thread has been joined, so the counters are final
    cstats, sstats = client.stats, server.stats
    print()
    print("what travelled:")
    print(f"  TLS connections (sessions)   {sstats.sessions}")
    print(f"  streams opened               {cstats.streams}"
          f" ({cstats.reused} on a reused session)")
    print(f"  bytes client → target        {sstats.bytes_up}")
    print(f"  bytes target → client        {sstats.bytes_down}")
    print(f"\nall stopped cleanly in {time.monotonic() - started:.2f} s")
    return 0 if ok_socks and ok_http else 1
