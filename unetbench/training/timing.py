"""Synchronised training timer: warm-up apart, steady state measured, no per-step host sync.

    timer = StepTimer(sync=backend.synchronize, new_event=backend.new_event, warmup_steps=5)
    timer.epoch_start()
    for batch in ...:
        timer.step_start()                 # device event only; never blocks the host
        ...
        timer.add_data_wait(seconds)
        timer.step_end(samples=len(batch))
    timer.epoch_end()                      # one synchronisation, then events are read

Per-step times come from device events (CUDA/HPU events, or the host clock on CPU) recorded
into the stream and read only at the end of an epoch, so the hot loop never waits for the
device. Wall-clock boundaries (warm-up end, epoch end) synchronise first: without that the
host clock would measure kernel launches, not work.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

STEP_SAMPLE_LIMIT = 2000  # step times written to the results for distribution plots (evenly thinned)


class Event(Protocol):
    def record(self) -> None: ...
    def elapsed_ms(self, later: "Event") -> float: ...


@dataclass
class TimingTotals:
    """Accumulators that survive a checkpoint/resume (plain numbers and lists)."""

    steps: int = 0                  # training steps run by this run, warm-up included
    warmup_s: float = 0.0
    warmup_steps_done: int = 0
    measured_steps: int = 0
    measured_samples: int = 0
    measured_s: float = 0.0
    data_wait_s: float = 0.0
    step_ms: list = field(default_factory=list)
    traced_steps: int = 0           # steps run under the profiler (--trace-steps): in no figure
    traced_s: float = 0.0

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_state(cls, state: dict) -> "TimingTotals":
        return cls(**state)


def percentiles(values_ms: list) -> dict:
    if not values_ms:
        return {k: None for k in ("p50", "p90", "p99", "min", "max", "mean")}
    a = np.asarray(values_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99),
            "min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())}


class StepTimer:
    """Times one process's training steps. ``warmup_steps`` counts from the process start,
    so a resumed run warms up (recompiles) again and that time is kept out as well."""

    def __init__(self, sync: Callable[[], None], new_event: Callable[[], Event], warmup_steps: int,
                 clock: Callable[[], float] = time.perf_counter, totals: TimingTotals | None = None,
                 trace_steps: int = 0):
        self.sync = sync
        self.new_event = new_event
        self.clock = clock
        self.warmup_steps = warmup_steps
        # After warm-up, once per run, this many steps run under the profiler (trace.py): a
        # window of their own, counted in no throughput figure (profiling slows them).
        self.trace_steps = trace_steps
        self._trace_until: int | None = None   # process step where tracing ends; set at warm-up's end
        self._tracing_since: float | None = None
        # Called as hook(phase, now) at every synchronised boundary: phase is the window that
        # opens at ``now`` ("warmup", "trace", "steady", or "eval" from the trainer) or None
        # when one closes. The energy ledger reads its counters there (energy_windows.py).
        self.hooks: list[Callable[[str | None, float], None]] = []
        self.totals = totals or TimingTotals()
        self._process_steps = 0
        self._events: list[Event] = []
        self._measuring_since: float | None = None
        self._warmup_since: float | None = None
        self._epoch_samples = 0

    # -- epoch boundaries -------------------------------------------------------------
    def epoch_start(self) -> float:
        # Synchronise so that the epoch clock does not start while earlier work (evaluation,
        # checkpointing) is still queued on the device.
        self.sync()
        self._events = []
        self._epoch_samples = 0
        now = self._open()
        self._epoch_t0 = now
        return now

    def epoch_end(self) -> float:
        """Synchronise, close the measured window, read the step events. Returns epoch seconds."""
        # The last step ends where the stream is now, so its closing event is queued before
        # synchronising: recorded after sync() (which waits for the device and, with several
        # ranks, for the slowest rank) it would add that wait to the last step of every epoch.
        end = None
        if self._events:
            end = self.new_event()
            end.record()
        self.sync()  # all queued steps must have finished before the clock is read
        now = self.clock()
        t = self.totals
        self._close(now)
        # Events were recorded at the start of each measured step plus one after the last;
        # consecutive differences are the device-side step times (data wait included). The
        # sync above has completed them all, so reading them waits for nothing.
        if end is not None:
            marks = self._events + [end]
            # Every step is kept (a float each): percentiles over all of them, never over a
            # thinned list that would over-weight the latest epochs.
            t.step_ms.extend(a.elapsed_ms(b) for a, b in zip(marks, marks[1:]))
        self._events = []
        return now - self._epoch_t0

    @contextmanager
    def paused(self):
        """Time inside (an evaluation between two steps, --eval-every) belongs to no training
        window: the measured window and the step events close before it, as at an epoch's
        end, and reopen after; epoch_end() then returns the epoch's training seconds only.
        Yields the epoch's training seconds so far (synchronised)."""
        so_far = self.epoch_end()
        paused_at = self._epoch_t0 + so_far
        try:
            yield so_far
        finally:
            self.sync()
            now = self._open()
            self._epoch_t0 += now - paused_at

    # -- steps --------------------------------------------------------------------------
    def step_start(self) -> None:
        if self.phase != self._due():
            # Warm-up (or tracing) just ended: synchronise so compilation and autotuning queued
            # by the warm-up steps are charged to warm-up, not to the first measured step. The
            # window closes and the next opens with a clock reading each: what the hooks do in
            # between (energy reads, the profiler writing its trace) lies in neither window,
            # nor in the epoch's training seconds.
            self.sync()
            closed = self.clock()
            self._close(closed)
            opened = self._open()
            self._epoch_t0 += opened - closed
        if self.measuring:
            event = self.new_event()
            event.record()
            self._events.append(event)

    def add_data_wait(self, seconds: float) -> None:
        if self.measuring:
            self.totals.data_wait_s += seconds

    def step_end(self, samples: int) -> None:
        t = self.totals
        if self.measuring:
            t.measured_steps += 1
            t.measured_samples += samples
        elif self._tracing_since is not None:
            t.traced_steps += 1
        else:
            t.warmup_steps_done += 1
        self._process_steps += 1
        t.steps += 1

    @property
    def measuring(self) -> bool:
        return self._measuring_since is not None

    # -- windows ------------------------------------------------------------------------
    @property
    def phase(self) -> str | None:
        """The open window: "warmup", "trace", "steady", or None between epochs."""
        if self._warmup_since is not None:
            return "warmup"
        if self._tracing_since is not None:
            return "trace"
        return "steady" if self._measuring_since is not None else None

    def _due(self) -> str:
        """The window the next step belongs to."""
        if self._process_steps < self.warmup_steps:
            return "warmup"
        if self._trace_until is None:  # warm-up is over: the traced steps come next, once per run
            self._trace_until = self._process_steps + (0 if self.totals.traced_steps else self.trace_steps)
        return "trace" if self._process_steps < self._trace_until else "steady"

    def _open(self) -> float:
        """Open the next step's window, right after a sync: the hooks run first, then the clock
        reading that opens it (returned), so the hooks' time lies outside the window."""
        due = self._due()
        self.mark(due)
        now = self.clock()
        if due == "warmup":
            self._warmup_since = now
        elif due == "trace":
            self._tracing_since = now
        else:
            self._measuring_since = now
        return now

    def _close(self, now: float) -> None:
        t = self.totals
        if self._warmup_since is not None:  # the epoch ended inside warm-up
            t.warmup_s += now - self._warmup_since
            self._warmup_since = None
        if self._tracing_since is not None:
            t.traced_s += now - self._tracing_since
            self._tracing_since = None
            self._trace_until = self._process_steps  # an epoch's end also ends the tracing
        if self._measuring_since is not None:
            t.measured_s += now - self._measuring_since
            self._measuring_since = None
        self.mark(None, now)

    def mark(self, phase: str | None, now: float | None = None) -> None:
        """Run the hooks at a synchronised boundary, outside every timed window: ``phase`` opens
        (None: the open window closes). The evaluator marks its windows too.

        Closing: ``now`` is the clock reading that closed the window; the hooks run after it,
        in order. Opening: the hooks run before the clock reading that opens the window, in
        reverse order, each given a clock reading taken just before it runs (or ``now``). The
        energy ledger, first hook at a closing and so last at an opening, reads its counter
        right after the closing reading and right before the opening one: its windows are the
        timer's, each shifted by one counter read (the time an hl-smi call takes, say), and its
        seconds are those of its own reads."""
        if phase is None:
            for hook in self.hooks:
                hook(None, now)
            return
        for hook in reversed(self.hooks):
            hook(phase, self.clock() if now is None else now)

    # -- summary ------------------------------------------------------------------------
    def summary(self, samples_scale: int = 1) -> dict:
        """Steady-state figures; ``samples_scale`` turns per-rank samples into global ones."""
        t = self.totals
        samples = t.measured_samples * samples_scale
        return {
            "warmup_steps": t.warmup_steps_done,
            "warmup_s": t.warmup_s,
            "traced_steps": t.traced_steps,
            "traced_s": t.traced_s,
            "measured_steps": t.measured_steps,
            "measured_samples": samples,
            "measured_s": t.measured_s,
            "steady_samples_per_s": samples / t.measured_s if t.measured_s > 0 else None,
            "step_ms": percentiles(t.step_ms),
            "data_wait_s": t.data_wait_s,
            "data_wait_fraction": t.data_wait_s / t.measured_s if t.measured_s > 0 else None,
            "step_samples_ms": thin(t.step_ms, STEP_SAMPLE_LIMIT),
        }


def thin(values: list, limit: int) -> list:
    """At most ``limit`` values, evenly spread over ``values`` in their order (first and last kept)."""
    if len(values) <= limit:
        return list(values)
    index = np.linspace(0, len(values) - 1, limit).round().astype(int)
    return [values[i] for i in index]
