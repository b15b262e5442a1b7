"""What the trainer hangs on its StepTimer's synchronised boundaries: the energy ledger, the profiler.

    self.tracer, self.energy = instrument(self.timer, backend, out, run_name, settings.trace_steps, dist)

Order matters: at a closing the ledger reads its counters first, right after the timer's clock
reading, and the tracer then stops (and writes its trace), outside the window that closed; at
an opening the timer runs its hooks in reverse order before its clock reading (timing.py,
StepTimer.mark): the tracer starts, the ledger reads, then the window opens.
"""

from __future__ import annotations

from pathlib import Path

from .energy_windows import EnergyLedger
from .trace import Tracer


def instrument(timer, backend, out: Path, run_name: str, trace_steps: int, dist) -> tuple[Tracer, EnergyLedger]:
    tracer = Tracer(backend, out, run_name, trace_steps, rank=dist.rank)
    ledger = EnergyLedger(backend.energy_meter(), dist, monitor_id=backend.monitor_device_id())
    timer.trace_steps = trace_steps
    timer.hooks += [ledger.hook, tracer.hook]
    return tracer, ledger

