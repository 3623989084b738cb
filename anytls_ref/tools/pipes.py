"""Printing into a pipe whose reader has gone (``anytls-ref demo --trace | head``): stop quietly.

Once ``head`` has read its lines and exited, every later write to stdout fails with
BrokenPipeError, and so would the interpreter's last flush at exit. The reader has seen all
it wanted: stdout is pointed at /dev/null, so those writes go nowhere, and the program ends
with exit code 0 instead of a traceback (or, from a logging handler, one per line logged).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable


def stdout_gone() -> None:
    """Point stdout at /dev/null: the pipe's reader has seen enough."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run_into_pipe(main: Callable[[], int]) -> int:
    """``main()``'s exit code, or 0 once the reader of stdout has gone."""
    try:
        return main()
    except BrokenPipeError:
        stdout_gone()
        return 0


class PipeHandler(logging.StreamHandler):
    """A log handler writing to stdout that goes quiet, not noisy, when the reader has gone."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            stdout_gone()
            return
        super().handleError(record)
