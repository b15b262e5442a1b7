"""Energy meters: the cumulative energy of the devices one process trains on, read in process.

    meter = backend.energy_meter()       # each device's backend names its meter (devices/<device>/energy.py)
    before = meter.read()                # joules since the meter was made
    ...                                  # work, between two synchronised boundaries
    joules = meter.read() - before
    meter.source, meter.resolution, meter.absent    # recorded in the results (training/energy_windows.py)

This module is what every meter shares: ``Meter`` over raw counters (wrap-around and driver
restarts handled) with an optional power integral for short windows, ``PowerIntegral``, and
``Absent`` for a process with no meter (it says why). Each device folder builds its own from
its vendor's counter: devices/cuda/energy.py (NVML), devices/gaudi/energy.py (HLML, hl-smi),
devices/cpu/energy.py (RAPL).

Counters are polled in a background thread every few seconds besides the reads at the
boundaries, so a wrap-around between two boundaries far apart is never missed.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Callable, Mapping, Sequence

MIN_COUNTER_WINDOW_S = 1.0   # ten updates of NVML's slowest (100 ms) counter: shorter windows integrate power
NVML_WRAP = 2**64            # NVML and HLML counters are unsigned 64-bit millijoules


class Absent:
    """No meter for this process; ``absent`` says why (recorded in the results)."""

    source = None
    resolution = None
    devices: list = []
    min_window_s = 0.0

    def __init__(self, reason: str):
        self.absent = reason

    def read(self) -> float | None:
        return None

    def fine(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def counter_delta(last: int, raw: int, wrap: int | None, may_reset: bool) -> int:
    """Counter units between two readings. A smaller reading is a wrap-around at ``wrap``; for a
    counter that restarts when its driver reloads (``may_reset``), a wrap that would imply more
    than half the range in one step is a restart from zero instead."""
    if raw >= last:
        return raw - last
    wrapped = raw + wrap - last if wrap else None
    if wrapped is None or (may_reset and wrapped > wrap // 2):
        return raw
    return wrapped


class PowerIntegral:
    """Trapezoid integral of a power reading (W) over time; a read samples power at that instant."""

    def __init__(self, power_w: Callable[[], float], clock: Callable[[], float] = time.perf_counter):
        self.power_w = power_w
        self.clock = clock
        self.joules = 0.0
        self._t, self._p = clock(), power_w()

    def sample(self) -> float:
        t, p = self.clock(), self.power_w()
        self.joules += 0.5 * (p + self._p) * (t - self._t)
        self._t, self._p = t, p
        return self.joules


class Meter:
    """Cumulative joules of one or more raw counters (``scale_j`` joules per unit), with an
    optional power integral beside them for short windows. With no counter, the integral is
    the reading itself. A daemon thread samples both every ``poll_s`` seconds."""

    absent = None

    def __init__(self, source: str, devices: Sequence[str], counters: Sequence[Callable[[], int]] = (),
                 scale_j: float = 1e-3, wrap: int | None = NVML_WRAP, may_reset: bool = True,
                 power_w: Callable[[], float] | None = None, resolution: Mapping | None = None,
                 min_window_s: float = MIN_COUNTER_WINDOW_S, poll_s: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter, start_polling: bool = True):
        if not counters and power_w is None:
            raise ValueError("a meter needs a counter or a power reading")
        self.source = source
        self.devices = list(devices)
        self.resolution = dict(resolution or {})
        self.min_window_s = min_window_s if counters and power_w is not None else 0.0
        self._counters = list(counters)
        self._scale_j, self._wrap, self._may_reset = scale_j, wrap, may_reset
        self._last = [read() for read in self._counters]
        self._units = 0
        self._lock = threading.Lock()
        self._integral = PowerIntegral(power_w, clock) if power_w is not None else None
        self._stop = threading.Event()
        self._thread = None
        if start_polling:
            self._thread = threading.Thread(target=self._poll, args=(poll_s,), daemon=True, name="energy-meter")
            self._thread.start()

    def _advance(self) -> None:
        for i, read in enumerate(self._counters):
            raw = read()
            self._units += counter_delta(self._last[i], raw, self._wrap, self._may_reset)
            self._last[i] = raw
        if self._integral is not None:
            self._integral.sample()

    def _poll(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                with self._lock:
                    self._advance()
            except Exception:  # a failed poll loses nothing: the next read advances from the last good one
                continue

    def read(self) -> float:
        """Joules since the meter was made: the counters' when there are any, else the integral."""
        with self._lock:
            self._advance()
            return self._units * self._scale_j if self._counters else self._integral.joules

    def fine(self) -> float | None:
        """Joules of the power integral (sampled by the last read()), for windows shorter than
        ``min_window_s``; None where the counter is the only source."""
        return self._integral.joules if self._integral is not None and self._counters else None

    def close(self) -> None:
        self._stop.set()


def working(read: Callable[[], float], error: type) -> Callable[[], float] | None:
    """``read`` if one call succeeds (the device supports it), else None."""
    try:
        read()
    except error:
        return None
    return read


def run_text(argv: list) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout
