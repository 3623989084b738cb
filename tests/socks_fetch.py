"""A page fetched through a SOCKS5 port (PySocks), for the tests of issue 17's inputs."""

from __future__ import annotations

import socks


def get_via_socks(socks_port: int, target: tuple[str, int], path: str = "/",
                  timeout: float = 10.0) -> bytes:
    """GET ``path`` from ``target`` through the SOCKS5 proxy on 127.0.0.1:socks_port; the whole
    answer (the target closes after it)."""
    with socks.create_connection(target, proxy_type=socks.SOCKS5, proxy_addr="127.0.0.1",
                                 proxy_port=socks_port, timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: target\r\n\r\n".encode())
        chunks = []
        while data := sock.recv(1 << 16):
            chunks.append(data)
    return b"".join(chunks)
