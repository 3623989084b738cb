"""Running as a service: the log level and line format, and serving until SIGTERM or SIGINT
with a grace period for running work (contrib/anytls-ref-server.service runs it so)."""

from __future__ import annotations

import datetime
import logging
import os
import signal
import threading

from ..config.argv import UsageError

log = logging.getLogger("anytls_ref.cli")

#: ``--log-level`` (before or after the subcommand), else the environment's LOG_LEVEL
LOG_LEVELS = ("debug", "info", "warning", "error")


LOG_LEVEL_ENV = "LOG_LEVEL"


#: ``--grace``'s default: seconds running streams get to finish after SIGTERM/SIGINT
DEFAULT_GRACE = 5.0


def log_level(args) -> str:
    """``--log-level``, else LOG_LEVEL from the environment, else info."""
    if args.log_level is not None:
        return args.log_level
    from_env = os.environ.get(LOG_LEVEL_ENV, "")
    if not from_env:
        return "info"
    if from_env.lower() not in LOG_LEVELS:
        raise UsageError(f"{LOG_LEVEL_ENV}={from_env[:40]!r} is not a log level: "
                         f"{', '.join(LOG_LEVELS)}")
    return from_env.lower()


class LogFormatter(logging.Formatter):
    """Each line starts with an ISO 8601 local time with its UTC offset, to the millisecond."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.datetime.fromtimestamp(record.created).astimezone()
        return moment.isoformat(timespec="milliseconds")


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter("%(asctime)s %(levelname)-7s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def os_reason(exc: OSError) -> str:
    """An OSError's reason alone (socket.create_server appends the address it was binding)."""
    return str(exc.strerror or exc).split(" (while attempting to bind")[0]


class StopSignals:
    """SIGTERM and SIGINT: the first asks for a graceful stop, a second exits at once."""

    def __init__(self) -> None:
        self.received = threading.Event()
        self.name = ""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        if self.received.is_set():
            # not through logging: its lock may be held by the code this handler interrupted
            os.write(2, f"anytls-ref: {signal.Signals(signum).name} again: exiting at "
                        "once\n".encode())
            os._exit(0)
        self.name = signal.Signals(signum).name
        self.received.set()


def serve(service, grace: float, stop_line) -> int:
    """Run ``service`` (a ThreadedListener) until a signal, then stop as a service should:
    no new connections at once, running work gets ``grace`` seconds to finish, the rest is
    closed, and one stop line (``stop_line(cut)``) is logged. Exit code 0."""
    signals = StopSignals()  # before the start-up line: whoever reads it may signal at once
    with service:
        signals.received.wait()
        service.stop_accepting()
        running = service.drain(0)
        log.info("%s: not accepting connections; %s", signals.name,
                 f"{running} running, given up to {grace:g} s to finish (--grace)" if running
                 else "nothing running")
        cut = service.drain(grace)
    log.info("%s", stop_line(cut))
    return 0
