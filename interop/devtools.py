"""A minimal Chrome DevTools Protocol client for the browser bench (interop/browser.py).

The DevTools protocol runs over a WebSocket and the standard library has no WebSocket client,
so this module holds the little of RFC 6455 a local DevTools endpoint needs: the opening
handshake, masked text frames out, text frames in (fragmented or not), ping → pong, close.
No extensions, no TLS, no binary messages. Bench tooling only: stdlib, no dependency.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import socket
import struct
import time
from urllib.parse import urlsplit

#: RFC 6455 section 1.3: the GUID appended to Sec-WebSocket-Key for Sec-WebSocket-Accept.
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class DevToolsError(Exception):
    """The browser answered a command with an error, or the connection failed."""


class WebSocket:
    """A blocking client WebSocket to ``ws://host:port/path``: ``send_text`` / ``recv_text``."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or parts.hostname is None:
            raise DevToolsError(f"not a ws:// URL: {url}")
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        self._buffer = b""
        try:
            self._handshake(parts.netloc, parts.path or "/")
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, host: str, path: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in f"{status} ":
            raise DevToolsError(f"WebSocket upgrade refused: {status}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise DevToolsError("WebSocket upgrade: wrong Sec-WebSocket-Accept")

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise DevToolsError("WebSocket closed by the browser")
        self._buffer += data

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        # a client masks every frame (RFC 6455 section 5.3)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        self.sock.sendall(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(OP_TEXT, text.encode())

    def recv_text(self) -> str:
        """The next whole text message (pings answered, pongs skipped on the way)."""
        message = b""
        while True:
            first, second = self._take(2)
            opcode, fin, n = first & 0x0F, first & 0x80, second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            if second & 0x80:  # a server must not mask, but tolerate it
                mask = self._take(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._take(n)))
            else:
                payload = self._take(n)
            if opcode == OP_PING:
                self._send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                raise DevToolsError("WebSocket closed by the browser")
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                message += payload
                if fin:
                    return message.decode()

    def close(self) -> None:
        try:
            self._send_frame(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


class DevTools:
    """One DevTools session on one WebSocket: ``call`` a method, ``wait_event`` for an event.

    Events that arrive while waiting for a result are kept, in order, for ``wait_event``.
    """

    def __init__(self, ws_url: str, timeout: float = 30.0) -> None:
        self.ws = WebSocket(ws_url, timeout)
        self.timeout = timeout
        self._next_id = 0
        self._events: collections.deque[dict] = collections.deque()

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        call_id = self._next_id
        self.ws.send_text(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv_text())
            if message.get("id") == call_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_event(self, method: str, timeout: float | None = None) -> dict:
        """The params of the next ``method`` event (earlier other events are dropped)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while self._events:
                event = self._events.popleft()
                if event["method"] == method:
                    return event.get("params", {})
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DevToolsError(f"no {method} event within {timeout or self.timeout} s")
            self.ws.sock.settimeout(remaining)
            try:
                message = json.loads(self.ws.recv_text())
            except socket.timeout:
                raise DevToolsError(f"no {method} event within {timeout or self.timeout} s")
            finally:
                self.ws.sock.settimeout(self.timeout)
            if "method" in message:
                self._events.append(message)

    def close(self) -> None:
        self.ws.close()
