"""ClientSession: one session of the client (spec "Client › Session"): one stream at a time,
cmdSettings with the first, the server's version learned, heartbeats, the TLS ticket kept for
the next session. The Client (client.py) owns the pool these go back to.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import TYPE_CHECKING

from ..effects import (
    CloseSession,
    HeartbeatAnswered,
    NewPaddingScheme,
    PeerVersion,
    StreamReady,
)
from ..errors import Reason
from ..frame import encode_psh
from ..padding import Padder, PaddingScheme
from ..rules import ClientRules
from ..socksaddr import SocksAddr, encode_socksaddr
from ..version import OpenResult
from .diagnose import silent_server
from .session import Session
from .stream import Stream
from .trace import Tracer

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("anytls_ref.client")


class ClientSession(Session):
    """A session on the client: one stream at a time; learns the server's version."""

    def __init__(self, client: Client, sock: ssl.SSLSocket, seq: int, scheme: PaddingScheme,
                 padder: Padder) -> None:
        super().__init__(
            sock,
            ClientRules(client.config.client_name, scheme.md5),
            label=f"sess {seq}",
            padder=padder,
            tracer=Tracer() if client.config.trace else None,
        )
        self.client = client
        self.seq = seq
        self.next_stream_id = 1
        self.settings_sent = False
        self.created = time.monotonic()
        self.reader: threading.Thread | None = None
        self.alert: str | None = None
        #: its TLS session, to resume a newer session with (read when the server's answer
        #: came, tickets first), and whether a newer one has offered it (once only: D38)
        self.ticket: ssl.SSLSession | None = None
        self.ticket_taken = False
        #: heartbeat bookkeeping: answers received, and when the session was last known alive
        #: (created, back in the pool, or a cmdHeartResponse)
        self._heart = threading.Condition()
        self.heartbeats_answered = 0
        self.alive_at = self.created
        #: whether the server answers our FIN with its own (None: not seen yet; D40)
        self.server_answers_fin: bool | None = None
        #: open_stream calls between taking this session and its stream being registered (under
        #: the client's lock): the session is not idle meanwhile, whatever its streams say
        self.opening = 0
        #: the client chose to end it (idle, closing, not reused), rather than the server
        self.ended_here = False

    @property
    def server_version(self) -> int | None:
        return self.rules.server_version

    @property
    def can_heartbeat(self) -> bool:
        return self.server_version is not None and self.rules.features.heartbeat

    def send_heartbeat(self) -> int:
        """Send cmdHeartRequest; returns the answer count to pass to ``heartbeat_answered``."""
        with self._heart:
            answered = self.heartbeats_answered
        self.write(self.rules.heart_request())
        self.client.stats.add(heartbeats=1)
        return answered

    def heartbeat_answered(self, answered_before: int, deadline: float) -> bool:
        """Wait until a cmdHeartResponse newer than ``answered_before`` arrives (True), or the
        deadline passes or the session closes (False)."""
        with self._heart:
            while self.heartbeats_answered <= answered_before and not self.closed.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._heart.wait(remaining)
            return self.heartbeats_answered > answered_before

    def on_effect(self, effect) -> None:
        if isinstance(effect, StreamReady):
            stream = self.streams.get(effect.stream_id)
            if stream is not None:
                stream.answered(OpenResult(effect.reason, effect.error or ""))
        elif isinstance(effect, PeerVersion):
            log.debug("%s: server speaks version %d", self.label, effect.version)
            for stream in list(self.streams.values()):
                stream.wake()
            # the TLS tickets came before this; reading the session costs ~140 µs (a copy), done
            # here while the first stream still waits for the server's dial (D38)
            self.ticket = self.tls.resumable_session()
        elif isinstance(effect, NewPaddingScheme):
            self.client.update_padding_scheme(effect.raw, self.label)
        elif isinstance(effect, HeartbeatAnswered):
            with self._heart:
                self.heartbeats_answered += 1
                self.alive_at = time.monotonic()
                self._heart.notify_all()

    def _apply(self, effect) -> None:
        if isinstance(effect, CloseSession) and effect.alert is not None:
            self.alert = effect.alert
            if effect.reason is Reason.UNSUPPORTED_SID:
                # the ssrlive 0.3.x server accepts only sid 1 (decisions.md D32); decided here,
                # not by a waiting open_stream, because by default nobody waits
                self.client.stop_reuse(effect.alert)
        super()._apply(effect)

    def on_stream_gone(self) -> None:
        # the server ended the stream (cmdFIN): the session is idle again now, before the
        # application sees its connection end, not once the stream's relay thread has noticed;
        # its next connection, which may come at once, finds the session in the pool
        self.client.stream_done(self)

    def shutdown(self, reason: BaseException | str = "closed") -> None:
        if isinstance(reason, str) and self.error is None:
            self.ended_here = True  # a decision (a string), not a failure (an exception)
        super().shutdown(reason)

    def on_closed(self) -> None:
        with self._heart:
            self._heart.notify_all()  # a heartbeat waiter gives up at once
        self.client.session_closed(self)
        if self.frames_in == 0 and not self.ended_here:
            # not one frame after our password went out: the likeliest cause is the password
            self.client.diagnosis(silent_server(self.first_bytes or b"", self.client.config.server))

    def stream_closed(self, stream: Stream) -> None:
        super().stream_closed(stream)
        self.client.stream_done(self)

    def stream_finished(self, stream: Stream) -> None:
        super().stream_finished(stream)
        self.client.stream_done(self)  # a stream we are done sending on does not keep it busy

    @property
    def busy(self) -> bool:
        """A stream is being opened or still sends on this session (D40: one we finished,
        whose answer may still come, does not count: Go servers never send their FIN for it)."""
        return self.opening > 0 or any(s.sending for s in tuple(self.streams.values()))

    def open_stream(self, target: SocksAddr, initial: bytes = b"") -> Stream:
        """Send SYN + PSH(address + initial) (after cmdSettings on a new session) as one write."""
        address = encode_socksaddr(target)  # a bad one fails here, before any state changes
        with self._state_lock:
            # [SESS-SYN-SID-INCREASING] "The client should generate a monotonically increasing
            # streamId within the Session for each Stream."
            stream_id = self.next_stream_id
            self.next_stream_id += 1
            syn = self.rules.open_stream(stream_id)
            stream = Stream(self, stream_id)
            self.streams[stream_id] = stream
            first = b""
            if not self.settings_sent:
                # [SESS-SETTINGS-FIRST] "The client must immediately send cmdSettings when
                # starting a new session."
                first = self.rules.settings_frame()
                self.settings_sent = True
        # [PAD-PACKET1] "Packet 1 should include: cmdSettings and the first Stream's cmdSYN +
        # cmdPSH(proxy target address)"
        self.write(first + syn + encode_psh(stream_id, address + initial))
        # [PAD-PACKET2] "Packet 2 should be the first data packet proxied from the user": the
        # stream's first sendall is this session's next write
        return stream
