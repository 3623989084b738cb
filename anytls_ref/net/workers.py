"""Threads that run one connection's or one stream's work each, and wait a moment for the next.

The design is a thread per connection (and per stream on the server); this only saves starting
them. Starting an OS thread costs about 70 µs on an idle machine, several ms under load, and the
starter waits for it (``Thread.start`` blocks until the new thread runs); handing a task to a
thread already waiting costs about 30 µs. Every new stream pays this once on the client (its
SOCKS5 handler) and once on the server (the thread that dials its target), so a thread whose
task is done waits ``IDLE_TIMEOUT`` for another before it exits. Nothing else is shared: a task
has its thread to itself until it returns.

The owner calls ``close()``, which refuses new tasks, waits for the running ones (the owner
must have woken them first: shut their sockets down) and joins every thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

#: How long a finished thread waits for another task before it exits. Short: new streams come
#: in bursts (a page load), and an idle thread should not outlive the burst by much.
IDLE_TIMEOUT = 2.0
#: At most this many threads wait at once; the rest exit when their task is done.
MAX_IDLE = 64


class Workers:
    """Runs each task on a thread of its own, reusing threads that finished a task."""

    def __init__(self, name: str, *, idle_timeout: float = IDLE_TIMEOUT,
                 max_idle: int = MAX_IDLE) -> None:
        self.name = name
        self._idle_timeout = idle_timeout
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[tuple[Callable[[], None], str] | None] = queue.SimpleQueue()
        self._idle = 0  #: threads waiting in _tasks.get (each task put is for one of them)
        self._threads: set[threading.Thread] = set()
        self._closed = False

    @property
    def idle(self) -> int:
        """How many threads are waiting for a task."""
        with self._lock:
            return self._idle

    def spawn(self, task: Callable[[], None], name: str) -> bool:
        """Run ``task`` on a thread named ``name``; False (and nothing runs) once closed."""
        with self._lock:
            if self._closed:
                return False
            if self._idle:
                self._idle -= 1
                self._tasks.put((task, name))
                return True
            thread = threading.Thread(target=self._work, args=(task, name), name=name)
            self._threads.add(thread)
        thread.start()
        return True

    def _work(self, task: Callable[[], None], name: str) -> None:
        try:
            while True:
                task()
                item = self._next_task()
                if item is None:
                    return
                task, name = item
                threading.current_thread().name = name
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _next_task(self) -> tuple[Callable[[], None], str] | None:
        with self._lock:
            if self._closed or self._idle >= self._max_idle:
                return None
            self._idle += 1
        threading.current_thread().name = f"{self.name}-idle"
        try:
            return self._tasks.get(timeout=self._idle_timeout)
        except queue.Empty:
            with self._lock:
                try:  # a task (or close's None) put for an idle thread while this one timed out
                    return self._tasks.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return None

    def close(self) -> None:
        """Refuse new tasks, end the waiting threads and join every thread (running tasks must
        end by themselves: the owner wakes them before this)."""
        with self._lock:
            self._closed = True
            for _ in range(self._idle):
                self._tasks.put(None)  # one for each waiting thread: it exits
            self._idle = 0
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return
            for thread in threads:
                thread.join()
