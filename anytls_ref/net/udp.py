"""UDP over TCP (sing-box UoT v2) on both sides: spec "Client › Proxy" and "Server › Proxy".

Server: a stream to ``sp.v2.udp-over-tcp.arpa`` starts with a request (isConnect + SocksAddr);
the server opens a UDP socket, answers cmdSYNACK (v ≥ 2) and relays datagrams both ways, each
reply tagged with its real source address. The legacy ``sp.udp-over-tcp.arpa`` has no request
and always uses the address form. An association with no datagram either way for
UDP_IDLE_TIMEOUT seconds ends; a malformed packet ends its stream with a log line.

Client: a SOCKS5 UDP ASSOCIATE gets a UDP relay socket on the inbound's address. The first
datagram from the application opens one anytls stream to the magic address (address mode, like
sing-box: the request travels with the first datagram), and SOCKS5 UDP headers are translated
to UoT packets and back. The association ends when the SOCKS TCP connection closes.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import threading
import time
from typing import Callable

from ..errors import AnyTLSError, RemoteProtocolError
from ..frame import NEED_DATA
from ..socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr
from ..uot import (UOT_LEGACY_MAGIC, UotRequest, decode_packet, decode_uot_request,
                   encode_packet, encode_uot_request, UOT_V2_MAGIC)
from .sockutil import shutdown_quietly
from .stream import Stream

log = logging.getLogger("anytls_ref.udp")

#: An association with no datagram in either direction for this long is closed (seconds).
UDP_IDLE_TIMEOUT = 120.0
MAX_UDP = 65535


def _plain_host(host: str) -> str:
    """'::ffff:1.2.3.4' → '1.2.3.4' (a dual-stack socket reports IPv4 peers this way)."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


class _PacketReader:
    """Turns a stream's bytes into UoT packets."""

    def __init__(self, stream: Stream, connect: bool, initial: bytes = b"") -> None:
        self.stream = stream
        self.connect = connect
        self.buf = initial

    def next(self, timeout: float | None = None) -> tuple[SocksAddr | None, bytes] | None:
        """The next (address, payload), or None when the stream ended.

        Raises TimeoutError when no bytes arrive for ``timeout`` seconds."""
        while True:
            result = decode_packet(self.buf, connect=self.connect)
            if result is not NEED_DATA:
                addr, payload, used = result
                self.buf = self.buf[used:]
                return addr, payload
            data = self.stream.recv(timeout=timeout)
            if not data:
                return None
            self.buf += data


def _read_request(stream: Stream, rest: bytes, timeout: float) -> tuple[UotRequest, bytes]:
    buf = rest
    deadline = time.monotonic() + timeout
    while (result := decode_uot_request(buf)) is NEED_DATA:
        data = stream.recv(timeout=max(0.0, deadline - time.monotonic()))
        if not data:
            raise RemoteProtocolError("stream closed before its UoT request")
        buf += data
    request, used = result
    return request, buf[used:]


class _Resolver:
    """Small cache from (host, port) to a socket address for ``sendto``."""

    def __init__(self, family: int) -> None:
        self.family = family
        self._cache: dict[tuple[str, int], tuple] = {}

    def sockaddr(self, addr: SocksAddr) -> tuple:
        key = (addr.host, addr.port)
        if key not in self._cache:
            info = socket.getaddrinfo(addr.host, addr.port, type=socket.SOCK_DGRAM)
            _, _, _, _, sockaddr = info[0]
            if self.family == socket.AF_INET6 and len(sockaddr) == 2:
                sockaddr = (f"::ffff:{sockaddr[0]}", sockaddr[1], 0, 0)
            if len(self._cache) > 1024:
                self._cache.clear()
            self._cache[key] = sockaddr
        return self._cache[key]


def _udp_socket() -> socket.socket:
    """A dual-stack UDP socket (reaches IPv4 and IPv6 targets), or IPv4-only where needed."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 0))
    return sock


def serve_uot(stream: Stream, magic: str, rest: bytes, report: Callable[[str | None], None],
              name: str, timeout: float = 30.0) -> None:
    """Server side of one UoT stream. ``report(error)`` sends the SYNACK."""
    if magic == UOT_LEGACY_MAGIC:
        request = UotRequest(False, SocksAddr("0.0.0.0", 0))
    else:
        request, rest = _read_request(stream, rest, timeout)
    udp = _udp_socket()
    resolver = _Resolver(udp.family)
    if request.is_connect:
        try:
            udp.connect(resolver.sockaddr(request.destination))
        except OSError as exc:
            udp.close()
            report(f"udp {request.destination}: {exc.strerror or exc}")
            return
    report(None)
    log.debug("%s: UDP association (%s)", name,
              f"connect {request.destination}" if request.is_connect else "address mode")
    _relay_uot(stream, udp, resolver, request.is_connect, rest, name)


def _relay_uot(stream: Stream, udp: socket.socket, resolver: _Resolver, connect: bool,
               rest: bytes, name: str) -> None:
    last_activity = [time.monotonic()]
    closing = threading.Event()

    def replies() -> None:  # UDP socket → stream
        # blocking, without a timeout: shutdown() wakes a blocked recvfrom only in this mode
        try:
            while not closing.is_set():
                payload, source = udp.recvfrom(MAX_UDP)
                if closing.is_set():
                    return
                last_activity[0] = time.monotonic()
                addr = None if connect else SocksAddr(_plain_host(source[0]), source[1])
                stream.sendall(encode_packet(payload, addr))
        except (OSError, AnyTLSError) as exc:
            if not closing.is_set():
                log.debug("%s: UDP replies ended: %s", name, exc)
        finally:
            stream.close()

    helper = threading.Thread(target=replies, name=f"{name}-udp")
    helper.start()
    reader = _PacketReader(stream, connect, rest)
    try:
        while True:
            try:
                packet = reader.next(timeout=UDP_IDLE_TIMEOUT / 4)
            except TimeoutError:
                if time.monotonic() - last_activity[0] >= UDP_IDLE_TIMEOUT:
                    log.info("%s: UDP association idle for %.0f s, closing", name,
                             UDP_IDLE_TIMEOUT)
                    return
                continue
            if packet is None:
                return
            addr, payload = packet
            last_activity[0] = time.monotonic()
            try:
                if connect:
                    udp.send(payload)
                else:
                    udp.sendto(payload, resolver.sockaddr(addr))
            except OSError as exc:  # one unreachable target does not end the association
                log.debug("%s: sendto %s: %s", name, addr, exc)
    except RemoteProtocolError as exc:
        log.info("%s: malformed UoT packet: %s", name, exc)
    except AnyTLSError as exc:
        log.debug("%s: UoT stream ended: %s", name, exc)
    finally:
        closing.set()
        stream.close()
        shutdown_quietly(udp)  # wakes recvfrom (Linux, even unconnected)
        helper.join()
        udp.close()


# ---- client: SOCKS5 UDP ASSOCIATE ----

_SOCKS_UDP_HEAD = struct.Struct(">HB")  # RSV, FRAG


def parse_socks_udp(datagram: bytes) -> tuple[SocksAddr, bytes] | None:
    """SOCKS5 UDP request header (RFC 1928 §7) → (destination, payload); None if fragmented."""
    if len(datagram) < 4:
        raise RemoteProtocolError("SOCKS5 UDP datagram too short")
    _, frag = _SOCKS_UDP_HEAD.unpack_from(datagram)
    if frag != 0:
        return None
    result = decode_socksaddr(datagram[3:])
    if result is NEED_DATA:
        raise RemoteProtocolError("SOCKS5 UDP datagram header truncated")
    addr, used = result
    return addr, datagram[3 + used:]


def socks_udp_header(addr: SocksAddr) -> bytes:
    return _SOCKS_UDP_HEAD.pack(0, 0) + encode_socksaddr(addr)


class UdpAssociation:
    """One SOCKS5 UDP ASSOCIATE: owns the relay socket, the stream and one helper thread."""

    def __init__(self, open_stream: Callable[[SocksAddr, bytes], Stream], bind_host: str,
                 client_host: str, name: str) -> None:
        self._open_stream = open_stream
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((bind_host, 0))
        self.address = self.sock.getsockname()[:2]
        self.client_host = _plain_host(client_host)
        self.name = name
        self._client_addr: tuple | None = None
        self._stream: Stream | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._uplink, name=f"{name}-udp")
        self._downlink_thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread.start()

    def _uplink(self) -> None:  # application datagrams → stream
        try:
            while not self._closing.is_set():
                datagram, source = self.sock.recvfrom(MAX_UDP)
                if self._closing.is_set():
                    return
                if _plain_host(source[0]) != self.client_host:
                    log.info("%s: datagram from %s is not from the SOCKS client; dropped",
                             self.name, source[0])
                    continue
                self._client_addr = source
                try:
                    parsed = parse_socks_udp(datagram)
                except RemoteProtocolError as exc:
                    log.info("%s: %s; dropped", self.name, exc)
                    continue
                if parsed is None:
                    log.info("%s: fragmented SOCKS5 datagram (FRAG != 0) dropped", self.name)
                    continue
                addr, payload = parsed
                packet = encode_packet(payload, addr)
                if self._stream is None:
                    # the request travels with the first datagram, as sing-box does
                    request = encode_uot_request(UotRequest(False, addr))
                    self._stream = self._open_stream(SocksAddr(UOT_V2_MAGIC, 0), request + packet)
                    self._downlink_thread = threading.Thread(
                        target=self._downlink, args=(self._stream,), name=f"{self.name}-udp-down")
                    self._downlink_thread.start()
                else:
                    self._stream.sendall(packet)
        except (OSError, AnyTLSError) as exc:
            if not self._closing.is_set():
                log.info("%s: UDP association ended: %s", self.name, exc)

    def _downlink(self, stream: Stream) -> None:  # stream → application
        reader = _PacketReader(stream, connect=False)
        try:
            while (packet := reader.next()) is not None:
                addr, payload = packet
                if self._client_addr is not None and addr is not None:
                    self.sock.sendto(socks_udp_header(addr) + payload, self._client_addr)
        except (OSError, AnyTLSError) as exc:
            if not self._closing.is_set():
                log.info("%s: UDP replies ended: %s", self.name, exc)

    def close(self) -> None:
        self._closing.set()
        if self._stream is not None:
            self._stream.close()
        shutdown_quietly(self.sock)
        self._thread.join()
        if self._downlink_thread is not None:
            self._downlink_thread.join()
        self.sock.close()
