"""Shared fixtures: every test fails on leaked threads and on exceptions in background threads.

The others each own what they make for the duration of a test and close it (joining its
threads) at the end: our Servers (``make_server``), bare Clients (``make_client``), Clients
behind a local SOCKS5/HTTP port (``make_proxy``), and the local targets (``echo_server``,
``http_server``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from anytls_ref.net.client import Client, ClientConfig
from anytls_ref.net.inbound import LocalAuth, ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from anytls_ref.probe.targets import EchoServer
from interop import peers as peer_mod
from interop.targets import HTTPTarget

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

    def make(**config) -> Server:
        server = Server(ServerConfig(listen=("127.0.0.1", 0), password=password,
                                     **{**defaults, **config}))
        request.addfinalizer(server.close)
        server.start()
        return server

    return make


@pytest.fixture
def make_client(request):
    """Bare Clients (no local listener; insecure TLS unless told otherwise) with the test
    module's PASSWORD, for tests that open streams directly; all closed at the end."""
    password = getattr(request.module, "PASSWORD", "password")

    def make(address: tuple[str, int], **config) -> Client:
        config.setdefault("insecure", True)
        client = Client(ClientConfig(server=address, password=password, **config))
        request.addfinalizer(client.close)
        return client

    return make


@pytest.fixture
def make_proxy(request, make_server, make_client):
    """A started ProxyInbound (SOCKS5 + HTTP proxy) in front of a make_client Client to
    ``address`` (default: a new make_server() Server); ``auth`` and ``listen`` go to the
    inbound, the rest to ClientConfig. All closed at the end (an inbound closes its client)."""

    def make(address: tuple[str, int] | None = None, *, auth: LocalAuth | None = None,
             listen: str = "127.0.0.1", **config) -> ProxyInbound:
        if address is None:
            address = make_server().address
        inbound = ProxyInbound((listen, 0), make_client(address, **config), auth=auth)
        request.addfinalizer(inbound.close)
        inbound.start()
        return inbound

    return make


@pytest.fixture
def installed_peer():
    """``installed_peer(id)``: that real peer (interop/peers.py). One that is not installed skips
    the test, or fails it under ANYTLS_REQUIRE_PEERS=1 (CI)."""

    def get(peer_id: str) -> peer_mod.Peer:
        peer = peer_mod.get_peer(peer_id)
        if not peer.installed():
            message = f"{peer_id} {peer.version} is not installed (run `make peers`)"
            if os.environ.get("ANYTLS_REQUIRE_PEERS") == "1":
                pytest.fail(message + " and ANYTLS_REQUIRE_PEERS=1")
            pytest.skip(message)
        return peer

    return get


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    """A TCP echo server on 127.0.0.1."""
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def http_server() -> Iterator[HTTPTarget]:
    """An HTTP/1.0 server on 127.0.0.1 (interop/targets.py HTTPTarget)."""
    server = HTTPTarget()
    yield server
    server.close()


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
