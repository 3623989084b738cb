"""The client's watchmen: the cmdSYNACK watchdog for streams handed out before their answer, and
active keepalive (``--heartbeat``). Each is one thread, started on first use and stopped and
joined by ``close()``, which ``Client.close`` calls.

Both act on what the pure layer decides: when a stream's silence means its session is stuck
(``version.open_outcome``, decisions.md D34), and that only a version ≥ 2 server may be
sent cmdHeartRequest (``ClientRules.heart_request``, D33).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from ..errors import AnyTLSError, Reason
from ..version import OpenPlan, OpenResult, open_outcome
from .stream import Stream

if TYPE_CHECKING:
    from .client import ClientSession

log = logging.getLogger("anytls_ref.client")


class SynackWatchdog:
    """Streams are handed out before their cmdSYNACK (the default), so nobody waits for it.
    This thread keeps Go's watchdog instead: a session whose stream is still unanswered at its
    plan's deadline is stuck, and is closed (spec "Protocol Version 2 › cmdSYNACK")."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        #: (when to look, stream, its plan, when its cmdSYN went out), oldest first: every
        #: deadline is "cmdSYN + the same delay"
        self._armed: deque[tuple[float, Stream, OpenPlan, float]] = deque()
        self._closing = False
        self._thread: threading.Thread | None = None

    def arm(self, stream: Stream, plan: OpenPlan, started: float) -> None:
        with self._cond:
            if self._closing or plan.deadline is None:
                return
            self._armed.append((started + plan.deadline, stream, plan, started))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="anytls-synack-watchdog")
                self._thread.start()
            elif len(self._armed) == 1:
                self._cond.notify()  # it was waiting with nothing armed

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._armed
                                             or self._armed[0][0] > time.monotonic()):
                    self._cond.wait(self._armed[0][0] - time.monotonic() if self._armed else None)
                if self._closing:
                    return
                due, stream, plan, started = self._armed.popleft()
            session = stream.session
            if stream.closed or session.closed.is_set():
                continue  # closed here before its answer: nothing to watch
            outcome = open_outcome(plan, elapsed=due - started, answer=stream.answer,
                                   server_version=session.rules.server_version)
            if isinstance(outcome, OpenResult) and outcome.reason is Reason.NO_SYNACK:
                log.warning("%s: no cmdSYNACK for sid %d within %.1f s; closing the stuck "
                            "session", session.label, stream.stream_id, plan.deadline)
                session.shutdown("cmdSYNACK timeout")

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()


class Heartbeats:
    """Active keepalive (decisions.md D33): every ``interval`` seconds, a cmdHeartRequest to each
    idle session of a version ≥ 2 server that has been quiet that long; one that does not answer
    within ``timeout`` is dropped. A session about to be reused after more than an interval of
    quiet is asked first (``alive_for_reuse``)."""

    def __init__(self, interval: float, timeout: float,
                 idle_sessions: Callable[[], list[ClientSession]],
                 drop: Callable[[ClientSession], None]) -> None:
        self.interval = interval
        self.timeout = timeout
        self._idle_sessions = idle_sessions
        self._drop = drop  #: takes a silent session out of the pool and closes it
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="anytls-heartbeat")
        self._thread.start()

    def _loop(self) -> None:
        while not self._closing.wait(self.interval):
            self.check_idle_sessions()

    def check_idle_sessions(self) -> None:
        """One round: ask every idle session quiet for at least the interval, then drop those
        with no answer within the timeout."""
        now = time.monotonic()
        asked = []
        for session in self._idle_sessions():
            if session.can_heartbeat and now - session.alive_at >= self.interval:
                try:
                    asked.append((session, session.send_heartbeat()))
                except (AnyTLSError, OSError):
                    pass  # the write failed: the session is closing already
        deadline = time.monotonic() + self.timeout
        for session, answered in asked:
            if (not session.heartbeat_answered(answered, deadline)
                    and not session.closed.is_set() and not self._closing.is_set()):
                self._failed(session, "idle in the pool")

    def alive_for_reuse(self, session: ClientSession) -> bool:
        """A session quiet for longer than the interval must answer a cmdHeartRequest before
        it carries a new stream."""
        if not session.can_heartbeat or time.monotonic() - session.alive_at <= self.interval:
            return True
        try:
            answered = session.send_heartbeat()
        except (AnyTLSError, OSError):
            return False  # the write failed: the session is closing already
        if session.heartbeat_answered(answered, time.monotonic() + self.timeout):
            return True
        self._failed(session, "before reuse")
        return False

    def _failed(self, session: ClientSession, when: str) -> None:
        log.warning("%s: no cmdHeartResponse within %.1f s (%s); dropping the session",
                    session.label, self.timeout, when)
        session.client.stats.add(heartbeat_failures=1)
        self._drop(session)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
