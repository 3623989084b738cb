"""The HTTP half of the client's local proxy port: reading a proxy request (RFC 9110 / 9112).

Two forms reach a proxy: ``CONNECT host:port`` (a tunnel; curl and browsers use it for HTTPS)
and an absolute-URI request such as ``GET http://host/path HTTP/1.1`` (plain HTTP through the
proxy). ``read_request`` reads the head under one deadline, ``parse_head`` turns it into a
``ProxyRequest`` or a ``BadRequest`` that carries the status to answer (400, 408, 414, 431)
and why; nothing the application sends ends in a traceback.

The absolute-URI request is passed on in origin form (``GET /path HTTP/1.1``), one request per
connection (``Connection: close``), with the hop-by-hop proxy headers removed and ``Host`` taken
from the URI: "When a proxy receives a request with an absolute-form of request-target, the
proxy MUST ignore the received Host header field (if any) and instead replace it with the host
information of the request-target." (RFC 9112 §3.2.2)
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..socksaddr import SocksAddr

#: The most a request head (request line and headers) may take.
MAX_HEAD = 64 * 1024
#: The most the request line alone may take.
MAX_REQUEST_LINE = 8 * 1024
#: Headers the proxy consumes rather than passes on (hop by hop, or replaced).
_DROPPED = (b"proxy-connection:", b"proxy-authorization:", b"connection:", b"keep-alive:",
            b"host:")


class BadRequest(Exception):
    """The application's request cannot be served: answer ``status`` and close."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass(frozen=True)
class ProxyRequest:
    target: SocksAddr
    #: CONNECT: a tunnel (answer 200, then relay); else a request to pass on
    tunnel: bool
    #: what goes to the target first: the rewritten request (and any body bytes already read),
    #: or for CONNECT any bytes the application sent after the head
    first: bytes
    #: the Proxy-Authorization header's value, if any
    authorization: str | None


def read_request(conn: socket.socket, deadline: float) -> tuple[bytes, bytes]:
    """The request head (without its blank line) and the bytes read after it; BadRequest 408 if
    the head is not complete by ``deadline`` (a slow sender holds no thread for ever)."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        head = data if end < 0 else data[:end]
        # checked on the complete head too: one recv may bring all of an oversized one
        if len(head.split(b"\r\n", 1)[0]) > MAX_REQUEST_LINE:
            raise BadRequest(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
        if len(head) > MAX_HEAD:
            raise BadRequest(431, f"request head longer than {MAX_HEAD} bytes")
        if end >= 0:
            return head, data[end + 4:]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BadRequest(408, "request head not complete in time")
        conn.settimeout(remaining)
        try:
            chunk = conn.recv(8192)
        except TimeoutError:
            raise BadRequest(408, "request head not complete in time") from None
        if not chunk:
            raise ConnectionError("connection closed inside the HTTP request head")
        data += chunk


def _target(host: str, port: int | None, *, what: str) -> SocksAddr:
    if not host:
        raise BadRequest(400, f"no host in {what}")
    if port is None or not 1 <= port <= 65535:
        raise BadRequest(400, f"bad port in {what}")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadRequest(400, f"bad IPv6 address in {what}") from None
    elif not all(ch.isalnum() or ch in "-._" for ch in host):
        raise BadRequest(400, f"bad host name in {what}")
    return SocksAddr(host, port)


def _connect_target(authority: str) -> SocksAddr:
    """``host:port`` or ``[v6]:port`` of a CONNECT request."""
    host, sep, port = authority.rpartition(":")
    if not sep or not port.isdigit() or len(port) > 5:
        raise BadRequest(400, f"CONNECT target {authority[:80]!r} is not HOST:PORT")
    if host.startswith("[") != host.endswith("]"):
        raise BadRequest(400, f"CONNECT target {authority[:80]!r}: unbalanced [ ]")
    if host.startswith("["):
        host = host[1:-1]
    elif ":" in host:
        raise BadRequest(400, f"CONNECT target {authority[:80]!r}: an IPv6 address needs [ ]")
    return _target(host, int(port), what=f"CONNECT target {authority[:80]!r}")


def parse_head(head: bytes, rest: bytes) -> ProxyRequest:
    """A proxy request from its head (``rest``: bytes read after it), or BadRequest."""
    request_line, *header_lines = head.split(b"\r\n")
    parts = request_line.decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, f"bad HTTP request line {request_line[:80]!r}")
    method, uri, version = parts
    authorization = None
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, f"bad header line {line[:80]!r}")
        if name.lower() == b"proxy-authorization":
            authorization = value.strip().decode("latin-1")
    if method.upper() == "CONNECT":
        return ProxyRequest(_connect_target(uri), True, rest, authorization)
    try:
        url = urlsplit(uri)
        port = url.port  # raises ValueError for a port out of range
        port = 80 if port is None else port
    except ValueError:
        raise BadRequest(400, f"bad URI {uri[:80]!r}") from None
    if url.scheme.lower() != "http" or not url.netloc:
        raise BadRequest(400, f"not a proxy request: {method} {uri[:80]} (only http:// URIs "
                              "and CONNECT are proxied)")
    target = _target(url.hostname or "", port, what=f"URI {uri[:80]!r}")
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    kept = [h for h in header_lines if not h.lower().startswith(_DROPPED)]
    request = b"\r\n".join([f"{method} {path} {version}".encode("latin-1"),
                            f"Host: {url.netloc.rpartition('@')[2]}".encode("latin-1"), *kept,
                            b"Connection: close", b"", b""])
    return ProxyRequest(target, False, request + rest, authorization)


def response(status: int, reason: str, text: str = "", *, headers: bytes = b"") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, with ``text`` as its body."""
    body = (text + "\n").encode("utf-8", errors="replace") if text else b""
    return (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n".encode()
            + headers
            + (b"Content-Type: text/plain; charset=utf-8\r\n" if body else b"")
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


REASONS = {400: "Bad Request", 407: "Proxy Authentication Required", 408: "Request Timeout",
           414: "URI Too Long", 431: "Request Header Fields Too Large", 502: "Bad Gateway"}
