"""Shared fixtures: every test fails on leaked threads and on exceptions in background threads."""

from __future__ import annotations

import threading
import time

import pytest

# local targets for the network tests (tests/targets.py), each owned by a fixture
from targets import echo_server, http_server  # noqa: F401


@pytest.fixture(autouse=True)
def thread_hygiene():
    """Fail the test if it leaves a thread running or a background thread raised (R13)."""
    before = set(threading.enumerate())
    errors: list[threading.ExceptHookArgs] = []
    old_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        errors.append(args)
        old_hook(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = old_hook
    # threads get a short grace period to finish their cleanup after the test's own teardown
    deadline = time.monotonic() + 5.0
    leaked: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            break
        time.sleep(0.02)
    assert not errors, f"exception in background thread: {errors[0].exc_value!r}"
    assert not leaked, f"leaked threads: {[t.name for t in leaked]}"
