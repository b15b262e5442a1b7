"""What the trainer hangs on its StepTimer's synchronised boundaries: the energy ledger, the profiler.

    self.tracer, self.energy = instrument(self.timer, backend, out, run_name, settings.trace_steps, dist)

Order matters: the ledger reads its counters first, right after the timer's clock reading;
the tracer then starts or stops (and writes its trace), outside the window that closed.
"""

from __future__ import annotations

from pathlib import Path

from .energy_windows import EnergyLedger
from .trace import Tracer


def instrument(timer, backend, out: Path, run_name: str, trace_steps: int, dist) -> tuple[Tracer, EnergyLedger]:
    tracer = Tracer(backend, out, run_name, trace_steps, rank=dist.rank)
    ledger = EnergyLedger(backend.energy_meter(), dist)
    timer.trace_steps = trace_steps
    timer.hooks += [ledger.hook, tracer.hook]
    return tracer, ledger


def print_energy_and_trace(energy: dict | None, trace: dict | None, top: int = 5) -> None:
    """The benchmark's lines for its end-to-end run's energy and trace (unetbench/training/bench.py)."""
    if energy and energy.get("j_per_sample") is not None:
        steady = energy["steady"]
        print(f"  energy (steady window, {energy['source']}): {energy['j_per_sample']:.4g} J/sample, "
              f"{energy['samples_per_s_per_w']:.4g} samples/s/W, {steady['avg_power_w']:.1f} W average")
    elif energy:
        print(f"  energy: not metered ({energy.get('absent') or 'no steady window'})")
    if trace:
        ops = ", ".join(f"{op['name']} {100 * (op['share'] or 0):.0f}%" for op in trace["top_operations"][:top])
        print(f"  trace: {trace['file']} (self {trace['time_basis']} time; top: {ops})")
