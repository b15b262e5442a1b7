"""The energy-per-sample plot: joules per steady training sample per group, samples/s/W annotated.

    write_energy_plot(comparison, "report/plots")     # -> {"energy_per_sample": path} when any run has it

Drawn by compare_results.py with the other plots; the figures come from energy_cost.py via
the groups' statistics (j_per_sample, samples_per_s_per_w).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plots import _bar_axes, _plt, _save, color
from .tables import fmt


def energy_per_sample_plot(plt: Any, comp, path: Path) -> Path | None:
    """Joules per steady sample per group (bars), with samples/s/W annotated."""
    groups = [g for g in comp.groups if g.stats["j_per_sample"].median is not None]
    if not groups:
        return None
    fig, ax = plt.subplots()
    for i, g in enumerate(groups):
        value = g.stats["j_per_sample"].median
        ax.bar(i, value, 0.6, color=color(g), edgecolor="black")
        eff = g.stats["samples_per_s_per_w"].median
        ax.annotate(f"{fmt(value, 3)} J" + (f"\n{eff:.3g} samples/s/W" if eff else ""), (i, value),
                    textcoords="offset points", xytext=(0, 4), ha="center")
    _bar_axes(ax, groups)
    ax.set(ylabel="energy per training sample, steady window (J)", title="Energy per sample (in-process meter)")
    return _save(plt, fig, path)


def write_energy_plot(comp, folder: str | Path) -> dict[str, Path]:
    if not comp.groups:
        return {}
    made = energy_per_sample_plot(_plt(), comp, Path(folder) / "energy_per_sample.png")
    return {"energy_per_sample": made} if made else {}
