"""The probe server of ``anytls-ref probe client`` (``ProbeServer``, a rawserver.RawServer),
which the client under test is pointed at. It dials nothing: the port of each stream's target
says what it does with the stream (the host is ignored):

    127.0.0.1:10001  echo   cmdSYNACK, then every byte back (an HTTP GET gets a small page + FIN)
    127.0.0.1:10002  refuse cmdSYNACK carrying an error text, then cmdFIN (as a failed dial)
    127.0.0.1:10003  alert  cmdAlert: the client must close the whole session

It answers ``padding-md5`` mismatches with its own scheme (``PROBE_SCHEME`` unless
``--padding-scheme``) and cmdSettings v ≥ 2 with cmdServerSettings v=min(client's, 3). It keeps
every TLS record and frame it reads, for the checks (client_checks.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..frame import Command, encode_psh
from ..settings import ClientSettings
from ..socksaddr import SocksAddr
from ..version import PROTOCOL_VERSION
from .rawserver import RawConnection, RawServer
from .scripting import frame

TARGET_HOST = "127.0.0.1"
TARGET_ECHO = 10001
TARGET_REFUSED = 10002
TARGET_ALERT = 10003
ALERT_TEXT = "anytls-ref probe: closing this session to see the client handle cmdAlert"
REFUSED_TEXT = "dial tcp 127.0.0.1:10002: connect: connection refused (anytls-ref probe)"

#: The scheme the probe server pushes: unlike the default in every line, with narrow ranges.
PROBE_SCHEME = (b"stop=5\n0=45-45\n1=150-250\n2=300-350,c,200-250\n3=9-9,100-150\n4=64-64")


@dataclass
class Target:
    """A stream the probe server saw: its session (connection number), id and target port."""

    conn: int
    sid: int
    port: int
    time: float


class ProbeServer(RawServer):
    """RawServer with the probe's script: the target port decides what happens to a stream."""

    def __init__(self, password: str, scheme: bytes = PROBE_SCHEME,
                 listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        # implicit_open: ssrlive's client never sends cmdSYN; opening its bare PSH lets the
        # other checks run (the syn-opens-stream check reports it)
        super().__init__(password, version=PROTOCOL_VERSION, padding_scheme=scheme,
                         listen=listen, implicit_open=True)
        self.targets: list[Target] = []
        self._first_data: set[tuple[int, int]] = set()

    def streams(self) -> list[Target]:
        with self._lock:
            return list(self.targets)

    def on_settings(self, conn: RawConnection, settings: ClientSettings) -> None:
        if self.scheme is not None and settings.padding_md5 != self.scheme.md5:
            self.record(conn.number, "update-sent")
        super().on_settings(conn, settings)

    def on_syn(self, conn: RawConnection, stream_id: int) -> None:
        pass  # answered once the target address is known

    def on_target(self, conn: RawConnection, stream_id: int, target: SocksAddr) -> None:
        with self._lock:
            self.targets.append(Target(conn.number, stream_id, target.port, time.monotonic()))
        if target.port == TARGET_ALERT:
            self.record(conn.number, "alert-sent", stream_id)
            self.alert(conn, ALERT_TEXT)
        elif target.port == TARGET_REFUSED:
            if conn.version >= 2:
                conn.send(frame(Command.SYNACK, stream_id, REFUSED_TEXT.encode()))
                self.record(conn.number, "synack-error-sent", stream_id)
            conn.fin(stream_id)
        elif conn.version >= 2:
            conn.send(frame(Command.SYNACK, stream_id))

    def on_data(self, conn: RawConnection, stream_id: int, data: bytes) -> None:
        key = (conn.number, stream_id)
        first = key not in self._first_data
        self._first_data.add(key)
        if first and data.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST"):
            # someone following the instructions with curl: a small page, then the end
            body = f"anytls-ref probe: session {conn.number}, stream {stream_id}\n".encode()
            head = (f"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    f"{len(body)}\r\nConnection: close\r\n\r\n").encode()
            conn.send(encode_psh(stream_id, head + body))
            conn.fin(stream_id)
            self.record(conn.number, "http-answered", stream_id)
            return
        super().on_data(conn, stream_id, data)
