"""Spec "Client › Reuse": the idle session pool policy (newest first, oldest cleaned first)."""

from __future__ import annotations

import pytest

from anytls_ref.errors import Reason
from anytls_ref.reuse import IdlePool, retry_on_new_session


def pool_with(*entries: tuple[str, float]) -> IdlePool[str]:
    """A pool holding sessions with Seq 1, 2, ... idle since the given times."""
    pool: IdlePool[str] = IdlePool()
    for name, idle_since in entries:
        pool.put(pool.next_seq(), name, idle_since)
    return pool


def test_seq_is_monotonically_increasing():
    pool: IdlePool[str] = IdlePool()
    seqs = [pool.next_seq() for _ in range(5)]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1
    pool.put(seqs[-1], "s", 0.0)
    pool.take()
    assert pool.next_seq() > seqs[-1]  # taking a session never hands its Seq out again


def test_take_returns_the_newest_idle_session_first():
    pool = pool_with(("old", 0.0), ("mid", 0.0), ("new", 0.0))
    assert pool.take() == (3, "new")
    assert pool.take() == (2, "mid")
    assert pool.take() == (1, "old")
    assert pool.take() is None


def test_newest_is_by_seq_not_by_when_it_went_idle():
    pool: IdlePool[str] = IdlePool()
    first, second = pool.next_seq(), pool.next_seq()
    pool.put(second, "second", 0.0)
    pool.put(first, "first", 100.0)  # went idle later, but is the older session
    assert pool.take() == (second, "second")


def test_sessions_lists_newest_first_and_discard_removes():
    pool = pool_with(("a", 0.0), ("b", 0.0), ("c", 0.0))
    assert pool.sessions() == ["c", "b", "a"]
    pool.discard(2)
    pool.discard(99)  # unknown: no error
    assert pool.sessions() == ["c", "a"] and len(pool) == 2


def test_expire_closes_sessions_idle_longer_than_the_timeout():
    pool = pool_with(("old", 0.0), ("fresh", 50.0))
    assert pool.expire(now=70.0, idle_timeout=60.0, min_idle=0) == ["old"]
    assert pool.sessions() == ["fresh"]


def test_expire_keeps_a_session_idle_exactly_the_timeout():
    pool = pool_with(("s", 0.0))
    assert pool.expire(now=60.0, idle_timeout=60.0, min_idle=0) == []


def test_expire_keeps_the_min_idle_newest_and_refreshes_them():
    pool = pool_with(("s1", 0.0), ("s2", 0.0), ("s3", 0.0), ("s4", 0.0))
    closed = pool.expire(now=100.0, idle_timeout=60.0, min_idle=2)
    assert closed == ["s2", "s1"]  # oldest cleaned, newest to oldest
    assert pool.sessions() == ["s4", "s3"]
    assert pool.idle_since(4) == pool.idle_since(3) == 100.0  # idle time restarted


def test_fresh_sessions_count_towards_min_idle():
    pool = pool_with(("old", 0.0), ("fresh", 90.0))
    assert pool.expire(now=100.0, idle_timeout=60.0, min_idle=1) == ["old"]
    assert pool.idle_since(2) == 90.0  # a fresh one is not refreshed


@pytest.mark.parametrize("reason, reused, retry", [
    (Reason.SESSION_CLOSED, True, True),  # an idle session that died while unused
    (Reason.SESSION_CLOSED, False, False),  # a new session that failed: the server is the fault
    (Reason.UNSUPPORTED_SID, True, True),  # ssrlive 0.3 (D32)
    (Reason.SESSION_BUSY, True, True),  # ssrlive 0.5: its one stream not freed yet (D40)
    (Reason.REFUSED, True, False),  # the target's fault: the same on any session
    (Reason.NO_SYNACK, True, False),  # a stuck session is closed, the request fails (D34)
])
def test_a_stream_is_opened_once_more_only_when_its_session_was_at_fault(reason, reused, retry):
    assert retry_on_new_session(reason, reused=reused) is retry
