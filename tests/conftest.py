"""Shared fixtures: every test fails on leaked threads and on exceptions in background threads."""

from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import HealthCheck, settings

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.server import Server, ServerConfig

# local targets for the network tests (tests/targets.py), each owned by a fixture
from targets import echo_server, http_server  # noqa: F401

# Hypothesis profiles for tests/test_properties.py: "ci" keeps `make test` to a few seconds;
# `make fuzz` runs HYPOTHESIS_PROFILE=fuzz. No deadline: a loaded CI machine is not a bug.
settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def make_server(request):
    """Start our Servers on 127.0.0.1:0 with the given ServerConfig fields; all closed at the end.

    The password is the test module's PASSWORD; its SERVER_DEFAULTS (a dict) sets other fields.
    """
    password = getattr(request.module, "PASSWORD", "password")
    defaults = getattr(request.module, "SERVER_DEFAULTS", {})
    servers: list[Server] = []

    def make(**config) -> Server:
        server = Server(ServerConfig(listen=("127.0.0.1", 0), password=password,
                                     **{**defaults, **config}))
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def make_client(request):
    """Bare Clients (no local listener; insecure TLS unless told otherwise) with the test
    module's PASSWORD, for tests that open streams directly; all closed at the end."""
    password = getattr(request.module, "PASSWORD", "password")
    clients: list[Client] = []

    def make(address: tuple[str, int], **config) -> Client:
        config.setdefault("insecure", True)
        client = Client(ClientConfig(server=address, password=password, **config))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


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
