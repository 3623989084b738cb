"""UDP over TCP v2 (spec "Client › Proxy" / "Server › Proxy"), our client → our server.

A SOCKS5 UDP ASSOCIATE through our client reaches local UDP echo servers through our server;
the sing-box pairs live in the interop suite.
"""

from __future__ import annotations

import socket
import threading

import pytest
import socks

from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.net.socks_client import Socks5Udp
from anytls_ref.probe.scripting import eventually
from interop.targets import UdpEcho


@pytest.fixture
def echoes():
    servers = [UdpEcho(), UdpEcho()]
    yield servers
    for server in servers:
        server.close()


def udp_through(inbound: ProxyInbound) -> socks.socksocket:
    sock = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.set_proxy(socks.SOCKS5, *inbound.address)
    sock.settimeout(5)
    return sock


@pytest.mark.spec("PROXY-UDP-UOT")
def test_datagrams_come_back_intact_with_their_source(echoes, make_proxy):
    sizes = [1 + (i * 7) % 1400 for i in range(200)] + [8000]
    with udp_through(make_proxy()) as sock:
        for n, size in enumerate(sizes):
            echo = echoes[n % 2]
            payload = bytes((n + i) % 256 for i in range(size))
            sock.sendto(payload, echo.address)
            data, source = sock.recvfrom(65535)
            assert data == payload
            assert source == echo.address  # the reply names its real source


def test_two_targets_in_one_association_are_told_apart(echoes, make_server, make_proxy):
    server = make_server()
    with udp_through(make_proxy(server.address)) as sock:
        sock.sendto(b"to-a", echoes[0].address)
        sock.sendto(b"to-b", echoes[1].address)
        replies = {sock.recvfrom(100) for _ in range(2)}
    assert replies == {(b"to-a", echoes[0].address), (b"to-b", echoes[1].address)}
    assert server.stats.streams == 1  # one association, one anytls stream


def test_association_ends_with_its_control_connection(echoes, make_proxy):
    sock = udp_through(make_proxy())
    sock.sendto(b"ping", echoes[0].address)
    assert sock.recvfrom(100)[0] == b"ping"
    before = {t.name for t in threading.enumerate()}
    assert any(name.endswith("-udp") for name in before)
    sock.close()  # closes the SOCKS TCP control connection
    eventually(lambda: not any(t.name.endswith(("-udp", "-udp-down"))
                               for t in threading.enumerate()), 5.0, "UDP threads gone")


# ---- the sing-box pairs (issue 5): the same traffic through a real peer on one side ----

SING_BOX_PAIRS = [("sing-box", "anytls_ref"), ("anytls_ref", "sing-box")]


@pytest.mark.interop
@pytest.mark.parametrize("client,server", SING_BOX_PAIRS, ids=[f"{c}->{s}" for c, s in SING_BOX_PAIRS])
def test_datagrams_through_sing_box_pairs(client, server, echoes, tmp_path, installed_peer):
    from interop.matrix import Setup, running_client, running_server

    installed_peer("sing-box")
    sizes = [1 + (i * 7) % 1400 for i in range(200)] + [8000]
    with running_server(server, Setup(), tmp_path) as srv:
        with running_client(client, Setup(), srv.port, tmp_path) as cli:
            with Socks5Udp(("127.0.0.1", cli.socks_port)) as sock:
                for n, size in enumerate(sizes):
                    echo = echoes[n % 2]
                    payload = bytes((n + i) % 256 for i in range(size))
                    sock.sendto(payload, echo.address)
                    data, source = sock.recvfrom()
                    assert data == payload, f"datagram {n} ({size} bytes) differs"
                    assert source == echo.address
