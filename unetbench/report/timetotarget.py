"""The report's time-to-quality and noise sections, and the quality-curve plot.

Usage::

    from unetbench.report.timetotarget import time_to_target_table, noise_table, write_quality_plot
    table = time_to_target_table(comp)     # None when no run had --target-miou
    table = noise_table(comp)              # None when no group has repeated runs
    paths = write_quality_plot(comp, "report/plots")   # {"time_to_quality": Path} or {}

Time to target per group is scored as MLPerf Training does (noise.mlperf_time); a group where
the target was missed reads "not reached". The noise table gives each group's median samples/s
with its 95% bootstrap interval and says "within noise" instead of a speedup when the interval
overlaps the baseline's.
"""

from __future__ import annotations

from pathlib import Path

from .compare import Comparison, Group
from .noise import (
    MIN_RUNS_FOR_INTERVAL,
    WITHIN_NOISE,
    bootstrap_interval,
    mlperf_time,
    speed_verdict,
)
from .tables import Table, fmt


def _targets(g: Group) -> list:
    return sorted({(r.data.get("quality") or {}).get("target_miou") for r in g.runs} - {None})


def time_to_target_table(comp: Comparison) -> Table | None:
    groups = [g for g in comp.groups if _targets(g)]
    if not groups:
        return None
    rows, notes = [], []
    scores = {g.label: mlperf_time([f["time_to_target_s"] for f in g.figures]) for g in groups}
    base = comp.baseline if comp.baseline in groups else None
    for g in groups:
        score, targets = scores[g.label], _targets(g)
        time = fmt(score.value, 1) if score.value is not None else "not reached"
        vs = "-"
        b = scores.get(base.label) if base else None
        if base is not None and g is not base and score.value and b and b.value and _targets(base) == targets:
            vs = f"{b.value / score.value:.2f}x"
            times = [f["time_to_target_s"] for f in g.figures]
            if speed_verdict(times, [f["time_to_target_s"] for f in base.figures])["within_noise"]:
                vs = f"{WITHIN_NOISE} ({vs})"   # the 95% intervals of the two groups' times overlap
        rows.append([g.label, str(len(g.runs)), "/".join(fmt(t, 3) for t in targets), f"{score.reached}/{score.runs}",
                     time, vs, score.method])
    if len({tuple(_targets(g)) for g in groups}) > 1:
        notes.append("groups trained towards different targets: their times are not compared.")
    notes.append("time to target = synchronised elapsed seconds (training windows + every validation, as MLPerf "
                 "counts them) at the first validation reaching the target; start-up and evaluation warm-up "
                 "are not in it. --eval-every N validates every N steps, else once per epoch.")
    if base is not None:
        notes.append(f"vs {base.label} = its time to target / this group's (above 1: this group is quicker); "
                     f"{WITHIN_NOISE} when the 95% bootstrap intervals of the runs' times overlap.")
    return Table("Time to target (validation mIoU)", ["group", "n", "target", "reached", "time to target s",
                                                      f"vs {base.label}" if base else "vs baseline", "scoring"],
                 rows, notes, "time_to_target")


def noise_table(comp: Comparison) -> Table | None:
    if not any(len(g.runs) > 1 for g in comp.groups):
        return None
    base = comp.baseline
    rows = []
    for g in comp.groups:
        values = [f["samples_per_s"] for f in g.figures]
        interval = bootstrap_interval(values)
        s = comp.speedups.get(g.label, {})
        if g is base:
            verdict = "baseline"
        elif s.get("speedup") is None:
            verdict = "n/c (see Performance)"
        elif s.get("within_noise"):
            verdict = WITHIN_NOISE
        elif s.get("within_noise") is None:
            verdict = f"{s['speedup']:.2f}x (noise unknown: < {MIN_RUNS_FOR_INTERVAL} runs)"
        else:
            verdict = f"{s['speedup']:.2f}x"
        rows.append([g.label, str(len(g.runs)), fmt(g.stats["samples_per_s"].median, 1),
                     f"{interval[0]:.1f}-{interval[1]:.1f}" if interval else "-", verdict])
    notes = [f"95% interval = percentile bootstrap of the median over the group's runs (needs "
             f"{MIN_RUNS_FOR_INTERVAL}+); when it overlaps the baseline's the difference is {WITHIN_NOISE} "
             "and no speedup is claimed."]
    return Table("Throughput over repeated runs (median, 95% interval)",
                 ["group", "n", "samples/s", "95% interval", f"vs {base.label}" if base else "vs baseline"],
                 rows, notes, "noise")


def write_quality_plot(comp: Comparison, folder: str | Path) -> dict[str, Path]:
    """Validation mIoU against elapsed seconds, one line per run, the target dashed."""
    curves = [(g, r, (r.data.get("quality") or {}).get("curve") or []) for g in comp.groups for r in g.runs]
    curves = [c for c in curves if len(c[2]) > 0]
    if not curves:
        return {}
    from .plots import (  # matplotlib is imported only when plots are drawn
        _plt,
        _save,
        color,
    )
    plt = _plt()
    fig, ax = plt.subplots()
    labelled = set()
    for g, r, curve in curves:
        points = [(p["elapsed_s"], p["val_miou"]) for p in curve if p.get("val_miou") is not None]
        if not points:
            continue
        style = "--" if g.profile == "fast" else "-"
        ax.plot(*zip(*points), style, color=color(g), marker=".", alpha=0.85,
                label=None if g.label in labelled else g.label)
        labelled.add(g.label)
    for target in sorted({t for g in comp.groups for t in _targets(g)}):
        ax.axhline(target, color="black", linestyle=":", linewidth=1.2)
        ax.annotate(f"target {target:g}", (0, target), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("elapsed seconds (training + evaluation)")
    ax.set_ylabel("validation mIoU")
    ax.set_title("Time to quality")
    ax.legend()
    path = Path(folder) / "time_to_quality.png"
    return {"time_to_quality": _save(plt, fig, path)}
