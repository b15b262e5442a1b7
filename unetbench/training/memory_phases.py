"""Device memory of the training: the run's peak over the measured window, and each sampled
step's high and low phase.

    memory = MemoryPhases(backend)
    timer.hooks.append(memory.hook)               # the peak restarts where the steady window first opens
    memory.before_step(sample); ...forward...; memory.after_forward(sample)
    ...backward, optimizer step...; pair = memory.after_step(sample)   # [high GB, low GB] or None
    memory.figures()                              # backend.memory_bytes() + what the peak covers

Why the peak restarts at the steady window: warm-up holds compilation and autotuning
workspaces (cuDNN benchmark mode's and inductor's trial kernels take memory from the caching
allocator) that steady training never needs, and not every device has them, so a peak that
included them would compare autotuners, not trainings. Evaluation's warm-up runs before
training, so it is outside too; evaluations after the window opened are inside.

The high phase is observed as the backend says (Backend.memory_high_phase): allocated after
the forward, or the step's own peak where the forward has not run when it returns (lazy-mode
Gaudi). A per-step peak resets the device's peak counter: what it held before is kept here,
so the run's peak still covers the whole window.
"""

from __future__ import annotations

from .results import GB

PEAK_WINDOW = "measured training steps and the evaluations after them (warm-ups excluded)"
PEAK_WHOLE_RUN = "the whole process, warm-ups included (no measured step yet)"


class MemoryPhases:
    def __init__(self, backend):
        self.backend = backend
        self.step_peak = backend.memory_high_phase == "step_peak"
        self.window_open = False     # once per process: a resumed process warms up again
        self._floor: int | None = None   # the peak before the latest per-step reset
        self._high: float | None = None

    def hook(self, phase: str | None, now: float) -> None:
        """A StepTimer hook: the first steady window opens (after its synchronisation)."""
        if phase == "steady" and not self.window_open:
            self.backend.reset_peak_memory()
            self._floor = None
            self.window_open = True

    def before_step(self, sample: bool) -> None:
        if sample and self.step_peak:
            self._floor = self._max(self._floor, self.backend.memory_bytes()["peak_allocated"])
            self.backend.reset_peak_memory()

    def after_forward(self, sample: bool) -> None:
        # Host-side bookkeeping of the allocator: reading it does not wait for the device.
        self._high = self._gb("allocated") if sample and not self.step_peak else None

    def after_step(self, sample: bool) -> list | None:
        """[high, low] in GB for a sampled step (None where the device cannot tell)."""
        if not sample:
            return None
        if self.step_peak:
            # The step's graph must have run for its peak to be booked: one synchronisation,
            # on sampled steps only (every --log-every steps).
            self.backend.synchronize()
            self._high = self._gb("peak_allocated")
        high, low = self._high, self._gb("allocated")
        self._high = None
        return None if high is None or low is None else [high, low]

    def figures(self) -> dict:
        """backend.memory_bytes(), its peak over the window (per-step resets undone), and
        ``peak_window``: what that peak covers."""
        memory = dict(self.backend.memory_bytes())
        memory["peak_allocated"] = self._max(self._floor, memory["peak_allocated"])
        memory["peak_window"] = PEAK_WINDOW if self.window_open else PEAK_WHOLE_RUN
        memory["step_high_phase"] = self.backend.memory_high_phase
        return memory

    def _gb(self, name: str) -> float | None:
        value = self.backend.memory_bytes()[name]
        return None if value is None else value / GB

    @staticmethod
    def _max(a, b):
        return b if a is None else a if b is None else max(a, b)
