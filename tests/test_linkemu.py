"""The bench's link emulator (interop/linkemu.py, the Go relay it starts): delay, order, ends of
a connection, the window bound, and nothing left behind. Timing bounds: a lower bound is strict
(the relay never hands a byte on early); an upper bound has a margin for a loaded machine.

The emulator is built by ``make peers`` (needs go); without the build these tests skip, except
under ANYTLS_REQUIRE_PEERS=1, where that is a failure.
"""

from __future__ import annotations

import hashlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from interop.linkemu import LinkEmulator, MiB, NotBuilt, binary
from interop.targets import OneConnection

REQUIRE = os.environ.get("ANYTLS_REQUIRE_PEERS") == "1"


@pytest.fixture
def link() -> Iterator[Callable[..., LinkEmulator]]:
    """Start emulators in front of an upstream; all closed at the end."""
    if binary() is None:
        if REQUIRE:
            pytest.fail(f"{NotBuilt()} and ANYTLS_REQUIRE_PEERS=1")
        pytest.skip(str(NotBuilt()))
    started: list[LinkEmulator] = []

    def start(upstream: tuple[str, int], **options) -> LinkEmulator:
        emulator = LinkEmulator(upstream, **options)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.close()


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def ping_times(address: tuple[str, int], count: int) -> list[float]:
    with connect(address) as sock:
        times = []
        for _ in range(count):
            start = time.monotonic()
            sock.sendall(b"p")
            assert sock.recv(1) == b"p"
            times.append(time.monotonic() - start)
    return times


def test_each_direction_is_delayed_by_one_way_delay(link, echo_server):
    emulator = link(echo_server.address, one_way_delay=0.05)
    times = ping_times(emulator.address, 5)
    assert min(times) >= 0.100, times
    assert statistics.median(times) < 0.110, times


def test_the_handshake_option_charges_one_round_trip_before_the_first_bytes(link, echo_server):
    emulator = link(echo_server.address, one_way_delay=0.025, handshake=True)
    first, second = ping_times(emulator.address, 2)
    assert first >= 0.100, first  # one RTT held, then one RTT for the ping
    assert 0.050 <= second < 0.065, second  # later bytes are not held


@pytest.mark.parametrize("options", [
    {"one_way_delay": 0.005},
    {"one_way_delay": 0.005, "window": 256 * 1024, "rate": 25e6},
], ids=["delay", "delay+window+rate"])
def test_megabytes_arrive_whole_and_in_order_both_ways(link, echo_server, options):
    emulator = link(echo_server.address, **options)
    data = os.urandom(4 * MiB)
    received = bytearray()
    with connect(emulator.address) as sock:
        def read_back() -> None:
            while len(received) < len(data) and (chunk := sock.recv(1 << 16)):
                received.extend(chunk)

        reader = threading.Thread(target=read_back, name="read-back")
        reader.start()
        sock.sendall(data)
        reader.join(30)
    assert not reader.is_alive()
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


def test_a_half_close_passes_through_after_the_delay_and_the_other_way_keeps_flowing(link):
    def answer_after_eof(conn: socket.socket) -> tuple[bytes, float]:
        request = b""
        while chunk := conn.recv(1024):
            request += chunk
        eof_at = time.monotonic()
        conn.sendall(b"got %d" % len(request))
        return request, eof_at

    server = OneConnection(answer_after_eof)
    emulator = link(server.address, one_way_delay=0.02)
    with connect(emulator.address) as sock:
        sock.sendall(b"hello")
        shut_at = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(1024):
            answer += chunk
    request, eof_at = server.join()
    assert request == b"hello"
    assert answer == b"got 5"
    assert eof_at - shut_at >= 0.02


def test_a_reset_passes_through_as_a_reset_after_the_delay(link):
    def wait_for_reset(conn: socket.socket) -> tuple[str, float]:
        assert conn.recv(1) == b"x"
        try:
            tail = conn.recv(1)
        except ConnectionResetError:
            return "reset", time.monotonic()
        return f"recv returned {tail!r}", time.monotonic()

    server = OneConnection(wait_for_reset)
    emulator = link(server.address, one_way_delay=0.02)
    sock = connect(emulator.address)
    sock.sendall(b"x")
    time.sleep(0.05)  # the "x" reaches the server before the reset is sent
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reset_at = time.monotonic()
    sock.close()
    outcome, seen_at = server.join()
    assert outcome == "reset"
    assert seen_at - reset_at >= 0.02


def test_one_connection_moves_at_most_window_per_round_trip(link):
    window, rtt, period = 1 * MiB, 0.1, 1.0
    samples: list[tuple[float, int]] = []

    def sink(conn: socket.socket) -> None:
        total = 0
        while chunk := conn.recv(1 << 20):
            total += len(chunk)
            samples.append((time.monotonic(), total))

    server = OneConnection(sink)
    emulator = link(server.address, one_way_delay=rtt / 2, window=window)
    block = os.urandom(256 * 1024)
    with connect(emulator.address) as sock:
        end = time.monotonic() + 0.25 + period + 0.05
        while time.monotonic() < end:
            sock.sendall(block)
    server.join()
    start = samples[0][0] + 0.25  # past the first window's burst
    moved = [total for at, total in samples if start <= at <= start + period]
    in_period = moved[-1] - moved[0]
    bound = window * period / rtt  # 10 MiB: one window per RTT
    # without the window the relay would pass hundreds of MB, and counting a byte in flight
    # only until its delivery (one delay, not an RTT) would double the figure
    assert in_period <= bound + window, in_period / bound
    assert in_period >= 0.7 * bound, in_period / bound


def test_close_ends_every_connection_and_the_process(link, echo_server):
    fds_before = len(os.listdir("/proc/self/fd"))
    emulator = link(echo_server.address, one_way_delay=0.01)
    with connect(emulator.address) as sock:
        sock.sendall(b"p")
        assert sock.recv(1) == b"p"
        emulator.close()
        assert emulator.proc.returncode is not None
        try:
            assert sock.recv(1) == b""  # closed by the relay's end (a FIN or a reset)
        except ConnectionResetError:
            pass
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_bad_command_lines_exit_2_with_one_line():
    script = os.path.join(os.path.dirname(__file__), "..", "interop", "linkemu.py")
    for args in (["--rtt", "10"], ["--to", "127.0.0.1:1", "--rtt", "-1"],
                 ["--to", "nowhere", "--rtt", "1"], ["--to", "127.0.0.1:1", "--window", "4XB"]):
        run = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("linkemu: "), run.stderr
