"""Graceful stop on SIGUSR1 / SIGTERM (what Slurm sends before a time limit or preemption).

    stop = StopRequest.install()
    ... after each step: if stop.requested: save, write results "interrupted", exit 3
"""

from __future__ import annotations

import signal


class StopRequest:
    SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

    def __init__(self):
        self.signal_name: str | None = None

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
            signal.signal(sig, request._handle)
        return request
