"""How device time is read: the events a backend hands the step timer (torch-free).

    event = backend.new_event()          # HostEvent on synchronous devices, TorchEvent over a device's own
    event.record(); ...; later.record()
    start.elapsed_ms(later)              # read once per epoch, after a synchronise: no host sync per step
"""

from __future__ import annotations

import time
from typing import Callable


class HostEvent:
    """Event on the host clock: right for synchronous devices (CPU)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self.t = 0.0

    def record(self) -> None:
        self.t = self._clock()

    def elapsed_ms(self, later: "HostEvent") -> float:
        return (later.t - self.t) * 1000.0


class TorchEvent:
    """Adapts a device module's Event (torch.cuda.Event, torch.hpu.Event) to the timer's Event protocol."""

    def __init__(self, event):
        self.event = event

    def record(self) -> None:
        self.event.record()

    def elapsed_ms(self, later: "TorchEvent") -> float:
        return self.event.elapsed_time(later.event)
