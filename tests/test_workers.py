"""net/workers.py: a thread per task, reused once its task is done; close() joins them all."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from anytls_ref.net.workers import Workers
from anytls_ref.probe.scripting import eventually


def run_and_wait(workers: Workers, name: str) -> threading.Thread:
    """Spawn a task that reports its thread, wait until it has run, return that thread."""
    ran = threading.Event()
    box: list[threading.Thread] = []

    def task() -> None:
        box.append(threading.current_thread())
        ran.set()

    assert workers.spawn(task, name)
    assert ran.wait(5)
    return box[0]


def test_a_finished_thread_runs_the_next_task_under_the_new_name():
    workers = Workers("w", idle_timeout=30)
    try:
        first = run_and_wait(workers, "task-1")
        eventually(lambda: workers.idle == 1, timeout=5)  # waiting for the next task
        names: list[str] = []
        ran = threading.Event()

        def second() -> None:
            names.append(threading.current_thread().name)
            ran.set()

        assert run_and_wait(workers, "task-2") is first  # no new thread was started
        workers.spawn(second, "task-3")
        assert ran.wait(5)
        assert names == ["task-3"]
    finally:
        workers.close()
    assert not first.is_alive()


@contextlib.contextmanager
def blocked_tasks(count: int, **config) -> Iterator[tuple[set[threading.Thread], threading.Event]]:
    """Workers(**config) running ``count`` tasks that wait for the Event yielded with their
    threads (once all run). At the end they are released and the Workers closed, and every
    one of those threads must have ended."""
    workers = Workers("w", **config)
    release = threading.Event()
    started = threading.Semaphore(0)
    threads: set[threading.Thread] = set()
    lock = threading.Lock()

    def task() -> None:
        with lock:
            threads.add(threading.current_thread())
        started.release()
        release.wait()

    try:
        for i in range(count):
            assert workers.spawn(task, f"t{i}")
        for _ in range(count):
            assert started.acquire(timeout=5)
        yield threads, release
    finally:
        release.set()
        workers.close()
    assert not any(t.is_alive() for t in threads)


def test_tasks_running_at_once_each_have_their_own_thread():
    with blocked_tasks(20, idle_timeout=30) as (threads, _):
        assert len(threads) == 20


def test_an_idle_thread_exits_after_the_idle_timeout():
    workers = Workers("w", idle_timeout=0.05)
    try:
        thread = run_and_wait(workers, "task")
        thread.join(5)
        assert not thread.is_alive()
        # and the next task gets a new thread (no task is lost to the one that left)
        assert run_and_wait(workers, "task") is not thread
    finally:
        workers.close()


def test_at_most_max_idle_threads_wait():
    with blocked_tasks(5, idle_timeout=30, max_idle=2) as (threads, release):
        release.set()
        eventually(lambda: sum(t.is_alive() for t in threads) == 2, timeout=5)


def test_close_refuses_new_tasks_and_joins_waiting_threads():
    workers = Workers("w", idle_timeout=30)
    thread = run_and_wait(workers, "task")
    workers.close()
    assert not thread.is_alive()
    assert workers.spawn(lambda: None, "late") is False
