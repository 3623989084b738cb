"""Fixtures for the local targets (the classes live in interop/targets.py, shared with the
interop suite): each fixture owns one target for the duration of a test and joins its threads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from interop.targets import (  # noqa: F401 - re-exported for the tests
    HTTP_BODY,
    EchoServer,
    HTTPTarget,
    UdpEcho,
    ipv6_loopback_available,
    refused_port,
)


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def http_server() -> Iterator[HTTPTarget]:
    server = HTTPTarget()
    try:
        yield server
    finally:
        server.close()
