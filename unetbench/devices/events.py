"""How device time is read: the events a backend hands the step timer (torch-free).

    event = backend.new_event()          # HostEvent on synchronous devices, TorchEvent over a device's own,
                                         # SyncedHostEvent where the device's events cannot time
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


class SyncedHostEvent(HostEvent):
    """The host clock after waiting for the device: for an asynchronous device whose events
    cannot measure time (torch.xpu.Event before torch 2.6 has no elapsed_time). The wait at
    every record makes each step's time the device's, at the price of one host-device
    synchronisation per step: the host can no longer queue step i+1 while step i runs, so
    the results record which method timed the steps."""

    def __init__(self, sync: Callable[[], None], clock: Callable[[], float] = time.perf_counter):
        super().__init__(clock)
        self._sync = sync

    def record(self) -> None:
        self._sync()   # the queued work up to here has finished: the clock now reads the device's time
        super().record()


class TorchEvent:
    """Adapts a device module's Event (torch.cuda.Event, torch.hpu.Event) to the timer's Event protocol."""

    def __init__(self, event):
        self.event = event

    def record(self) -> None:
        self.event.record()

    def elapsed_ms(self, later: "TorchEvent") -> float:
        return self.event.elapsed_time(later.event)
