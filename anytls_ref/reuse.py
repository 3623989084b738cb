"""anytls_ref.reuse — spec "Client › Reuse": the idle session pool policy.

Theory of operation: "The client must implement session layer reuse functionality."

    TCP Proxy -> Stream -> Session -> TLS -> TCP

* Before creating a session, take the idle session with the largest ``Seq`` ("prioritize
  reusing the latest session"); with none idle, create one with the next ``Seq``.
* When a stream ends and its session saw no error, the session goes back into the pool, idle
  since now.
* Regularly (e.g. every 30 s) close sessions idle longer than a timeout (e.g. 60 s), keeping the
  ``min_idle`` newest ("prioritize cleaning up the oldest session").
* A stream that failed to open because of its session, not its target, is opened once more:
  ``retry_on_new_session``.
* A stream the client finished sending on does not keep its session busy; the client still
  waits a while for the server's last data and FIN (``fin_linger``, decisions.md D40).

This module is the policy only: no locks, no clock. The caller passes ``now`` and serialises
calls (net/client.py holds a lock around it). ``S`` is whatever the caller calls a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import Reason

S = TypeVar("S")


@dataclass(slots=True)
class _Idle(Generic[S]):
    session: S
    idle_since: float


class IdlePool(Generic[S]):
    """Idle sessions keyed by their ``Seq``."""

    def __init__(self) -> None:
        self._idle: dict[int, _Idle[S]] = {}
        self._last_seq = 0

    def next_seq(self) -> int:
        """"The sequence number Seq of the Session should be monotonically increasing within a
        Client." """
        self._last_seq += 1  # [REUSE-SEQ-INCREASING]
        return self._last_seq

    def put(self, seq: int, session: S, now: float) -> None:
        """The session's stream ended without error: it is idle from ``now``."""
        # [REUSE-RETURN-IDLE] "the Session is put into the "idle session pool", and the idle
        # start time of the Session is set to now."
        self._idle[seq] = _Idle(session, now)

    def take(self) -> tuple[int, S] | None:
        """Remove and return the idle session with the largest Seq, or None."""
        if not self._idle:
            return None
        seq = max(self._idle)  # [REUSE-NEWEST-IDLE] "take the session with the largest Seq"
        return seq, self._idle.pop(seq).session

    def discard(self, seq: int) -> None:
        self._idle.pop(seq, None)

    def __len__(self) -> int:
        return len(self._idle)

    def sessions(self) -> list[S]:
        """Idle sessions, newest first."""
        return [self._idle[seq].session for seq in sorted(self._idle, reverse=True)]

    def idle_since(self, seq: int) -> float | None:
        entry = self._idle.get(seq)
        return entry.idle_since if entry else None

    def expire(self, now: float, idle_timeout: float, min_idle: int) -> list[S]:
        """Remove and return the sessions to close.

        Walks newest to oldest, as Go does: a session idle for less than ``idle_timeout`` stays
        and counts as kept; an older one also stays (with its idle time restarted) while fewer
        than ``min_idle`` are kept; the rest are returned for closing.
        """
        # [REUSE-CLEANUP] "close and delete sessions that have been idle for more than a certain
        # time"; [PARAM-MIN-IDLE] "keep at least the first n idle sessions from being closed"
        kept = 0
        to_close: list[S] = []
        for seq in sorted(self._idle, reverse=True):
            entry = self._idle[seq]
            if now - entry.idle_since <= idle_timeout:
                kept += 1
            elif kept < min_idle:
                entry.idle_since = now
                kept += 1
            else:
                to_close.append(self._idle.pop(seq).session)
        return to_close


def retry_on_new_session(reason: Reason, *, reused: bool) -> bool:
    """Open a stream that failed with ``reason`` once more (on the next idle or a new session)?

    Yes when the fault was the session's, not the target's: an idle session that died while
    unused (peers.md §4: middleboxes drop quiet connections) is only found out when it is
    reused; and a server that accepts no stream id but 1 answers a reused session with the Alert
    "unsupported sid" (ssrlive 0.3.x; the client then stops reusing, decisions.md D32); and
    ssrlive 0.5 frees a session's one stream only a moment after both FINs, so the next stream
    may meet "session stream limit reached" (D40). A new session that fails is not tried again:
    its server is down or refuses us.
    """
    if reason in (Reason.UNSUPPORTED_SID, Reason.SESSION_BUSY):
        return True
    return reused and reason is Reason.SESSION_CLOSED


#: decisions.md D40: after the client's FIN (its application's EOF) the server's answer may
#: still come; the client waits for it while something arrives at least this often.
FIN_LINGER = 5.0


def fin_linger(server_answers_fin: bool | None) -> float:
    """How long the client lingers after its FIN on a session whose server has, or has not
    (False), answered such a FIN before. The Go servers never do (a FIN ends the whole stream
    for them), so once one lingered in vain, later streams on that session close at once."""
    return 0.0 if server_answers_fin is False else FIN_LINGER
