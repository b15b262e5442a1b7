"""Graceful stop on SIGUSR1 / SIGTERM (what Slurm sends before a time limit or preemption).

    stop = StopRequest.install()
    ... after each step: if stop.requested: save, write results "interrupted", exit 3
    stop.restore()   # when the run is over
"""

from __future__ import annotations

import signal


class StopRequest:
    SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, _frame) -> None:
        # Only set a flag: the loop finishes its current step and checkpoints in order.
        self.signal_name = signal.Signals(signum).name

    @classmethod
    def install(cls) -> "StopRequest":
        request = cls()
        for sig in cls.SIGNALS:
            request._previous[sig] = signal.signal(sig, request._handle)
        return request

    def restore(self) -> None:
        """Put back the handlers found at install: a finished run must not swallow SIGTERM
        for the rest of the process (or for children it forks later)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
