"""Energy meters: the cumulative energy of the devices one process trains on, read in process.

    meter = backend.energy_meter()       # each device's backend names its meter (devices/<device>/energy.py)
    before = meter.read()                # joules since the meter was made
    ...                                  # work, between two synchronised boundaries
    joules = meter.read() - before
    meter.source, meter.resolution, meter.absent    # recorded in the results (training/energy_windows.py)
    meter.method, meter.sample_hz, meter.note       # "counter" | "power_integration" | "none", and why

This module is what every meter shares: ``Meter`` over raw counters (wrap-around and driver
restarts handled) with an optional power integral for short windows, ``PowerIntegral``, and
``Absent`` for a process with no meter (it says why). ``counter_or_power`` probes a vendor's
counter once before trusting it: a counter that raises, reads 0 or goes backwards (NVML's
total energy on a GPU older than Volta answers NOT_SUPPORTED or, through some bindings, 0 J)
is never reported as 0 J: the meter integrates power instead, or is ``Absent``, and says
which in ``note``. A counter that raises later, mid-run, does the same from then on. Each
device folder builds its own from its vendor's counter: devices/cuda/energy.py (NVML),
devices/gaudi/energy.py (HLML, hl-smi), devices/cpu/energy.py (RAPL).

Counters are polled in a background thread every few seconds besides the reads at the
boundaries, so a wrap-around between two boundaries far apart is never missed.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Callable, Mapping, Sequence

PROBE_S = 0.1                # between the probe's two reads: NVML's slowest counter update
MIN_COUNTER_WINDOW_S = 1.0   # ten updates of NVML's slowest (100 ms) counter: shorter windows integrate power
NVML_WRAP = 2**64            # NVML and HLML counters are unsigned 64-bit millijoules


class Absent:
    """No meter for this process; ``absent`` says why (recorded in the results)."""

    source = None
    resolution = None
    devices: list = []
    min_window_s = 0.0
    method = "none"
    sample_hz = None
    note = None

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
    the reading itself. A daemon thread samples both every ``poll_s`` seconds.

    ``method``: "counter" or "power_integration" (at ``sample_hz``, the polls; the reads at the
    boundaries add samples); ``note``: why a counter is not used, or stopped being used."""

    absent = None

    def __init__(self, source: str, devices: Sequence[str], counters: Sequence[Callable[[], int]] = (),
                 scale_j: float = 1e-3, wrap: int | None = NVML_WRAP, may_reset: bool = True,
                 power_w: Callable[[], float] | None = None, resolution: Mapping | None = None,
                 min_window_s: float = MIN_COUNTER_WINDOW_S, poll_s: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter, start_polling: bool = True,
                 power_source: str | None = None, note: str | None = None):
        if not counters and power_w is None:
            raise ValueError("a meter needs a counter or a power reading")
        self.source = source
        self.devices = list(devices)
        self.resolution = dict(resolution or {})
        self.min_window_s = min_window_s if counters and power_w is not None else 0.0
        self.method = "counter" if counters else "power_integration"
        # The integral's rate: the polls (the boundary reads add samples). A counter's meter
        # integrates only for short windows, from the boundary reads: no rate of its own.
        self._poll_hz = 1.0 / poll_s if power_w is not None and poll_s > 0 else None
        self.sample_hz = None if counters else self._poll_hz
        self.note = note
        self._power_source = power_source or f"{source} power"
        self._counters = list(counters)
        self._scale_j, self._wrap, self._may_reset = scale_j, wrap, may_reset
        self._units = 0
        self._lock = threading.Lock()
        self._integral = PowerIntegral(power_w, clock) if power_w is not None else None
        try:
            self._last = [read() for read in self._counters]
        except Exception as err:  # the vendor's error class: a counter that fails from the start
            self._last = []
            self._drop_counter(f"{source} raised ({err})")
        self._stop = threading.Event()
        self._thread = None
        if start_polling:
            self._thread = threading.Thread(target=self._poll, args=(poll_s,), daemon=True, name="energy-meter")
            self._thread.start()

    def _advance(self) -> None:
        if self._integral is not None:
            self._integral.sample()
        if self.absent is not None:
            return
        try:
            for i, read in enumerate(self._counters):
                raw = read()
                self._units += counter_delta(self._last[i], raw, self._wrap, self._may_reset)
                self._last[i] = raw
        except Exception as err:  # the vendor's error class: whatever the counter raised
            self._drop_counter(f"{self.source} raised mid-run ({err})")

    def _drop_counter(self, why: str) -> None:
        """A counter that fails mid-run is never read as 0 J: the power integral (sampled all
        along) takes over, or the meter becomes absent. The ledger sees the method change and
        takes the integral's difference for the window that was open."""
        self._counters = []
        self.min_window_s = 0.0
        if self._integral is not None:
            self.method, self.source = "power_integration", f"{self._power_source} integrated"
            self.sample_hz = self._poll_hz
            self.note = f"{why}: power integrated from then on"
        else:
            self.method, self.sample_hz = "none", None
            self.absent = self.note = f"{why}, and no power reading to integrate"

    def _poll(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                with self._lock:
                    self._advance()
            except Exception:  # a failed poll loses nothing: the next read advances from the last good one
                continue

    def read(self) -> float | None:
        """Joules since the meter was made: the counters' when there are any, else the integral;
        None once the meter is absent (its counter failed and there is no power reading)."""
        with self._lock:
            self._advance()
            if self.absent is not None:
                return None
            return self._units * self._scale_j if self._counters else self._integral.joules

    def fine(self) -> float | None:
        """Joules of the power integral (sampled by the last read()), for windows shorter than
        ``min_window_s`` and windows a failing counter left open; None without power readings."""
        return self._integral.joules if self._integral is not None else None

    def close(self) -> None:
        self._stop.set()


def probe_counter(read: Callable[[], int], wait: Callable[[], None] | None = None) -> str | None:
    """What is wrong with a counter, or None when it can be trusted: two reads ``PROBE_S``
    apart must succeed, the second not below the first, and not both 0 (a counter since the
    driver loaded is never 0 on a powered device; pre-Volta GPUs give 0 through some bindings)."""
    try:
        first = read()
        (wait or (lambda: time.sleep(PROBE_S)))()
        second = read()
    except Exception as err:  # the vendor's error class (NVMLError, HLMLError, ...)
        return f"raises ({err})"
    if second < first:
        return f"goes backwards ({first} then {second})"
    if first == 0 and second == 0:
        return "reads 0"
    return None


def counter_or_power(source: str, devices: Sequence[str], counter: Callable[[], int] | None,
                     power: Callable[[], float] | None, power_source: str, power_poll_s: float,
                     counter_resolution: Mapping, probe_wait: Callable[[], None] | None = None,
                     missing: str = "has no energy counter", **options) -> "Meter | Absent":
    """The counter (probed once) with the power integral beside it for short windows; else
    the power integral alone, saying why; else Absent. ``counter`` None: the vendor call
    failed already (``missing`` says how)."""
    problem = missing if counter is None else probe_counter(counter, probe_wait)
    if problem is None:
        return Meter(source, devices, [counter], power_w=power, power_source=power_source,
                     resolution={**counter_resolution, "short_window_s": MIN_COUNTER_WINDOW_S,
                                 "short_window_source": f"{power_source} integrated" if power else None},
                     **options)
    why = f"{source} {problem}"
    if power is not None:
        return Meter(f"{power_source} integrated", devices, power_w=power, power_source=power_source,
                     resolution={"unit_j": None, "sample_period_s": options.get("poll_s", power_poll_s)},
                     note=f"{why}: power integrated instead", **{"poll_s": power_poll_s, **options})
    return Absent(f"{why}, and no power reading either")


def working(read: Callable[[], float], error: type) -> Callable[[], float] | None:
    """``read`` if one call succeeds (the device supports it), else None."""
    try:
        read()
    except error:
        return None
    return read


def run_text(argv: list) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout
