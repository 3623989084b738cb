"""Fault injection for the reliability tests (tests/test_faults.py, tests/test_abuse.py) and the
abuse campaign (interop/abuse.py).

- ServerProcess: our Server in a child process, so that its threads, file descriptors and memory
  can be read from /proc/PID and the process can be killed like a crashed server. Started as
  ``python interop/faults.py serve ...`` with the ServerConfig fields the CLI does not expose
  (handshake, dial and address timeouts).
- BlackholeProxy: a TCP proxy in front of a server that, on ``blackhole()``, silently stops
  forwarding on every connection open at that moment (bytes are read and dropped, nothing is
  closed): a server that "stops answering", as a dead NAT or middlebox makes it look. New
  connections are forwarded as usual.
- SilentTarget: accepts connections and never reads from them (nor closes them).
- HangingTarget: a listener whose accept queue is full, so a connect to it hangs until its
  timeout (a target whose dial never completes).

Every class joins the threads it started in ``close()``.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for the script (ServerProcess's child) in an uninstalled checkout

from anytls_ref.net.sockutil import shutdown_quietly  # noqa: E402
from anytls_ref.net.workers import Workers  # noqa: E402


# ---- our server in a child process ---------------------------------------------------------------


def proc_counts(pid: int) -> tuple[int, int]:
    """(open file descriptors, threads) of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status, e.g. VmRSS (resident now) or VmHWM (resident peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class ServerProcess:
    """Our Server (anytls_ref.net.server) running in a child process on 127.0.0.1.

    ``log_path`` receives the server's log (level ``log_level``). ``stop()`` ends it with SIGTERM
    (a clean Server.close()) and fails if it takes more than ``timeout`` seconds; ``kill()``
    is SIGKILL, a crash.
    """

    def __init__(self, password: str, *, port: int = 0, log_path: str | os.PathLike,
                 handshake_timeout: float = 10.0, dial_timeout: float = 10.0,
                 address_timeout: float = 30.0, fallback: tuple[str, int] | None = None,
                 log_level: str = "info", start_timeout: float = 20.0) -> None:
        argv = [sys.executable, str(Path(__file__).resolve()), "serve",
                "--password", password, "--port", str(port),
                "--handshake-timeout", str(handshake_timeout),
                "--dial-timeout", str(dial_timeout), "--address-timeout", str(address_timeout),
                "--log-level", log_level]
        if fallback is not None:
            argv += ["--fallback", f"{fallback[0]}:{fallback[1]}"]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=ROOT)
        self.pid = self.proc.pid
        ready, _, _ = select.select([self.proc.stdout], [], [], start_timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(b"listening "):
            self.kill()
            raise RuntimeError(f"server process did not start: {line!r}; log: "
                               f"{self.log_path.read_text(errors='replace')[-2000:]}")
        self.address = ("127.0.0.1", int(line.split()[1]))

    def counts(self) -> tuple[int, int]:
        """(fds, threads) of the server process now."""
        return proc_counts(self.pid)

    def rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmHWM")

    def settle(self, baseline: tuple[int, int], *, slack: int = 2,
               timeout: float = 10.0) -> tuple[int, int]:
        """Poll until fds and threads are within ``baseline + slack``; returns the counts then.
        Raises AssertionError with the last counts if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.counts()
            if all(n <= b + slack for n, b in zip(now, baseline)):
                return now
            if time.monotonic() >= deadline:
                raise AssertionError(f"server (fds, threads) {now} not back to {baseline} "
                                     f"± {slack} within {timeout} s")
            time.sleep(0.05)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM: the server closes every session and joins every thread, then exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"server process did not stop within {timeout} s")
        self._close_files()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash: the kernel closes its sockets."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()

    def _close_files(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(args: argparse.Namespace) -> int:
    """The child side of ServerProcess: print ``listening PORT``, serve until SIGTERM."""
    from anytls_ref.net.server import Server, ServerConfig

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(threadName)s %(message)s")
    fallback = None
    if args.fallback:
        host, _, port = args.fallback.rpartition(":")
        fallback = (host, int(port))
    server = Server(ServerConfig(
        listen=("127.0.0.1", args.port), password=args.password,
        handshake_timeout=args.handshake_timeout, dial_timeout=args.dial_timeout,
        address_timeout=args.address_timeout, fallback=fallback))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 PID: stacks to the log
    with server:
        print(f"listening {server.address[1]}", flush=True)
        stop.wait()
    return 0


# ---- listeners that are not ThreadedListeners -----------------------------------------------------


class _Acceptor(contextlib.AbstractContextManager):
    """A listener on 127.0.0.1 whose one thread hands each accepted connection to ``accepted``
    and keeps it open (a ThreadedListener closes a connection once its handler returns).
    A subclass sets itself up, then calls ``_start``; its close() calls ``_stop_accepting``
    first. ``with`` closes it."""

    def __init__(self, thread_name: str) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._accept = threading.Thread(target=self._accept_loop, name=thread_name)

    def _start(self) -> None:
        self._accept.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted(conn)

    def accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _stop_accepting(self) -> None:
        shutdown_quietly(self._listener)
        self._listener.close()
        self._accept.join()

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        self.close()


# ---- a proxy that can go silent ------------------------------------------------------------------


class _Pipe:
    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.socks = (a, b)
        self.dead = False  #: set by blackhole(): read and drop, forward nothing


class BlackholeProxy(_Acceptor):
    """Forwards 127.0.0.1:PORT to ``upstream`` until ``blackhole()`` (see the module doc)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__("blackhole-accept")
        self.upstream = upstream
        self._pipes: list[_Pipe] = []
        #: two pump threads per connection, joined by close() (a silenced one must stay open)
        self._workers = Workers("blackhole")
        self.connections = 0
        self._start()

    def blackhole(self) -> int:
        """Silence every connection open now; returns how many."""
        with self._lock:
            for pipe in self._pipes:
                pipe.dead = True
            return len(self._pipes)

    def accepted(self, down: socket.socket) -> None:
        try:
            up = socket.create_connection(self.upstream, timeout=5)
            up.settimeout(None)
        except OSError:
            down.close()
            return
        pipe = _Pipe(down, up)
        with self._lock:
            self._pipes.append(pipe)
            self.connections += 1
        self._workers.spawn(partial(self._pump, pipe, down, up), "blackhole-up")
        self._workers.spawn(partial(self._pump, pipe, up, down), "blackhole-down")

    def _pump(self, pipe: _Pipe, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                if not pipe.dead:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            if not pipe.dead:
                shutdown_quietly(dst)  # a live connection ends as a whole

    def close(self) -> None:
        self._stop_accepting()
        with self._lock:
            pipes = list(self._pipes)
        for pipe in pipes:
            for sock in pipe.socks:
                shutdown_quietly(sock)
        self._workers.close()
        for pipe in pipes:
            for sock in pipe.socks:
                sock.close()


# ---- targets that misbehave ----------------------------------------------------------------------


class SilentTarget(_Acceptor):
    """Accepts every connection, then never reads from it and never closes it (until close())."""

    def __init__(self) -> None:
        super().__init__("silent-target")
        self.conns: list[socket.socket] = []
        self._start()

    def accepted(self, conn: socket.socket) -> None:
        with self._lock:
            self.conns.append(conn)

    def close(self) -> None:
        self._stop_accepting()
        with self._lock:
            for conn in self.conns:
                conn.close()


class HangingTarget(contextlib.AbstractContextManager):
    """A listener that never accepts, with its queue already full: connecting to it hangs until
    the connector's own timeout (Linux drops the SYNs)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._filler = socket.create_connection(self.address)  # fills the queue of one

    def close(self) -> None:
        self._filler.close()
        self._listener.close()

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="our server as a child process (ServerProcess)")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--password", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--handshake-timeout", type=float, default=10.0)
    s.add_argument("--dial-timeout", type=float, default=10.0)
    s.add_argument("--address-timeout", type=float, default=30.0)
    s.add_argument("--fallback")
    s.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
