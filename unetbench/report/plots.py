"""PNG plots of a comparison, drawn headless (matplotlib Agg), sized for slides.

Usage::

    from unetbench.report.plots import write_plots
    paths = write_plots(comparison, "results/report/plots")   # {"throughput": Path(...), ...}

Colour = backend (the same in every plot), line style / hatch = profile (parity solid, fast
dashed). matplotlib is imported here only, so the tables stay fast when no plots are asked for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_path
from ..core.registry import BACKENDS
from .compare import Comparison, Group

log = logging.getLogger(__name__)
BACKEND_COLORS = {name: spec.color for name, spec in BACKENDS.items()}
OTHER_COLOR = "#9467bd"   # a backend of an older or newer suite, not in this registry
PROFILE_STYLE = {"parity": ("-", ""), "fast": ("--", "//")}


def color(g: Group) -> str:
    return BACKEND_COLORS.get(g.backend, OTHER_COLOR)


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")  # headless: compute nodes have no display
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 13, "axes.titlesize": 15, "axes.grid": True, "grid.alpha": 0.3,
                         "figure.dpi": 100, "savefig.dpi": 150, "figure.figsize": (11, 6)})
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _bar_axes(ax: Any, groups: list[Group]) -> None:
    pad = 0.5 if len(groups) < 3 else 0.0  # keep one bar from filling the slide
    ax.set_xlim(-0.7 - pad, len(groups) - 0.3 + pad)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)  # room for the value labels above the bars
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.label + (f"\n{g.math}" if g.math else "") for g in groups], rotation=20 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")


def throughput(plt: Any, comp: Comparison, path: Path) -> Path:
    fig, ax = plt.subplots()
    for i, g in enumerate(comp.groups):
        s = g.stats["samples_per_s"]
        if s.median is None:
            continue
        ax.bar(i, s.median, 0.7, color=color(g), hatch=PROFILE_STYLE.get(g.profile, ("-", ""))[1], edgecolor="black", alpha=0.85)
        if s.n > 1:
            ax.errorbar(i, s.median, yerr=[[s.median - s.lo], [s.hi - s.median]], color="black", capsize=8, lw=2)
            ax.scatter([i] * s.n, [f["samples_per_s"] for f in g.figures if f["samples_per_s"] is not None],
                       color="black", s=14, zorder=3)
        ax.annotate(f"{s.median:.1f}", (i, s.hi), textcoords="offset points", xytext=(0, 6), ha="center")
    _bar_axes(ax, comp.groups)
    ax.set_ylabel("steady-state throughput (samples/s)")
    ax.set_title("Training throughput: median, error bar = min-max over repeated runs; hatched = fast profile")
    ax.title.set_fontsize(12)
    return _save(plt, fig, path)


def curves(plt: Any, comp: Comparison, path: Path, against: str) -> Path:
    fig, (ax_loss, ax_miou) = plt.subplots(1, 2)
    scale, unit = 1.0, "s"
    log_time = False
    if against == "time":
        ends = [r.data["history"][-1].get("elapsed_s") or 0 for g in comp.groups for r in g.runs if r.data["history"]]
        longest = max(ends, default=0)
        scale, unit = (60.0, "min") if longest > 600 else (1.0, "s")
        # one slow backend (CPU) would squash every other curve against the y axis
        log_time = bool(ends) and min(ends) > 0 and longest / min(ends) > 8
    import statistics
    for g in comp.groups:
        style = PROFILE_STYLE.get(g.profile, ("-", ""))[0]
        marker = "o" if g.world_size == 1 else "s"
        depth = min(len(r.data["history"]) for r in g.runs)  # epochs every run of the group reached
        if depth == 0:
            continue
        per_epoch = [[r.data["history"][i] for r in g.runs] for i in range(depth)]
        if against == "epoch":
            xs = [rows[0]["epoch"] for rows in per_epoch]
        else:
            xs = [statistics.median([h.get("elapsed_s") or float("nan") for h in rows]) / scale for rows in per_epoch]
        for ax, key in ((ax_loss, "train_loss"), (ax_miou, "val_miou")):
            values = [[h[key] for h in rows if h[key] is not None] for rows in per_epoch]
            ys = [statistics.median(v) if v else float("nan") for v in values]
            ax.plot(xs, ys, style, color=color(g), marker=marker, ms=5, label=g.label + (f" ({g.math})" if g.math else "")
                    + (f" (median of {len(g.runs)})" if len(g.runs) > 1 else ""))
            if len(g.runs) > 1:  # band = min-max over the repeated runs
                ax.fill_between(xs, [min(v) if v else float("nan") for v in values],
                                [max(v) if v else float("nan") for v in values], color=color(g), alpha=0.2)
    xlabel = "epoch" if against == "epoch" else f"training + evaluation time ({unit})"
    ax_loss.set(xlabel=xlabel, ylabel="training loss (cross-entropy)", title="Training loss")
    ax_miou.set(xlabel=xlabel, ylabel="validation mIoU (0-1)", title="Validation mIoU")
    if against == "epoch":
        from matplotlib.ticker import MaxNLocator
        for ax in (ax_loss, ax_miou):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
    if log_time:
        from matplotlib.ticker import FormatStrFormatter
        for ax in (ax_loss, ax_miou):
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        xlabel = f"training + evaluation time ({unit}, log scale)"
        ax_loss.set_xlabel(xlabel)
        ax_miou.set_xlabel(xlabel)
    if any(len(g.runs) > 1 for g in comp.groups):
        fig.suptitle("line = median over repeated runs, shaded band = min-max", fontsize=11)
    ax_miou.legend(fontsize=10, loc="lower right")
    return _save(plt, fig, path)


def memory(plt: Any, comp: Comparison, path: Path) -> Path:
    fig, ax = plt.subplots()
    kinds = [("model_gb", "model", "..", 0.4), ("peak_allocated_gb", "peak allocated", "", 0.7),
             ("peak_reserved_gb", "peak reserved", "xx", 1.0)]
    width = 0.8 / len(kinds)
    for i, g in enumerate(comp.groups):
        for k, (metric, _, hatch, alpha) in enumerate(kinds):
            value = g.stats[metric].median
            if value is not None:
                ax.bar(i + (k - 1) * width, value, width, color=color(g), alpha=alpha, hatch=hatch, edgecolor="black")
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch=h, label=n) for _, n, h, _ in kinds],
              fontsize=11, loc="upper right")
    ax.set_ylim(0, 1.15 * max([g.stats["peak_reserved_gb"].median or g.stats["peak_allocated_gb"].median or 0
                                for g in comp.groups] + [0.1]))
    _bar_axes(ax, comp.groups)
    ax.set_ylabel("device memory (GB = 1e9 bytes)")
    ax.set_title("Memory per device (median over runs)")
    return _save(plt, fig, path)


def class_iou(plt: Any, comp: Comparison, path: Path) -> Path:
    names = list(dict.fromkeys(n for g in comp.groups for n in g.class_iou))
    fig, ax = plt.subplots(figsize=(max(11, 0.9 * len(names) * max(1, len(comp.groups)) / 2), 6))
    width = 0.8 / max(1, len(comp.groups))
    for k, g in enumerate(comp.groups):
        xs = [i + (k - (len(comp.groups) - 1) / 2) * width for i in range(len(names))]
        ys = [(g.class_iou.get(n).median if g.class_iou.get(n) and g.class_iou[n].median is not None else 0.0) for n in names]
        ax.bar(xs, ys, width, color=color(g), hatch=PROFILE_STYLE.get(g.profile, ("-", ""))[1], edgecolor="black",
               label=g.label, alpha=0.85)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set(ylim=(0, 1.25), yticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0], ylabel="test IoU (0-1)",
           title="Per-class test IoU by backend (median over runs)")
    ax.legend(fontsize=10, ncol=min(4, len(comp.groups)), loc="upper center")
    return _save(plt, fig, path)


def step_times(plt: Any, comp: Comparison, path: Path) -> Path | None:
    data = [(g, [t for r in g.runs for t in r.data["timing"].get("step_samples_ms") or []]) for g in comp.groups]
    data = [(g, ts) for g, ts in data if ts]
    if not data:
        return None
    fig, ax = plt.subplots()
    box = ax.boxplot([ts for _, ts in data], patch_artist=True, showfliers=True, whis=(1, 99),
                     medianprops={"color": "black", "linewidth": 2}, flierprops={"markersize": 3})
    everything = [t for _, ts in data for t in ts if t > 0]
    log_scale = bool(everything) and max(everything) / min(everything) > 20
    if log_scale:  # a CPU run next to accelerators would flatten every other box
        from matplotlib.ticker import FormatStrFormatter
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    for patch, (g, _) in zip(box["boxes"], data):
        patch.set(facecolor=color(g), alpha=0.8, hatch=PROFILE_STYLE.get(g.profile, ("-", ""))[1])
    ax.set_xticks(range(1, len(data) + 1))
    ax.set_xticklabels([g.label for g, _ in data], rotation=20 if len(data) > 4 else 0, ha="right" if len(data) > 4 else "center")
    ax.set_ylabel("steady-state step time (ms" + (", log scale)" if log_scale else ")"))
    ax.set_title("Step-time distribution (box = quartiles, whiskers = p1-p99)")
    return _save(plt, fig, path)


def energy(plt: Any, comp: Comparison, path: Path) -> Path | None:
    groups = [g for g in comp.groups if g.stats["energy_kj"].median is not None]
    if not groups:
        return None
    fig, (ax_e, ax_eff) = plt.subplots(1, 2)
    for i, g in enumerate(groups):
        for ax, metric, digits in ((ax_e, "energy_kj", 1), (ax_eff, "samples_per_j", 4)):
            value = g.stats[metric].median
            if value is not None:
                ax.bar(i, value, 0.6, color=color(g), edgecolor="black", hatch=PROFILE_STYLE.get(g.profile, ("-", ""))[1])
                ax.annotate(f"{value:.{digits}f}", (i, value), textcoords="offset points", xytext=(0, 4), ha="center")
    for ax in (ax_e, ax_eff):
        _bar_axes(ax, groups)
    ax_e.set(ylabel="energy in training window (kJ)", title="Energy")
    ax_eff.set(ylabel="training samples per joule (samples/J)", title="Energy efficiency")
    return _save(plt, fig, path)


def scaling(plt: Any, comp: Comparison, path: Path) -> Path | None:
    if not comp.scaling:
        return None
    fig, ax = plt.subplots()
    series: dict[tuple, list] = {}
    for row in comp.scaling:
        series.setdefault((row["backend"], row["profile"]), []).append(row)
    top = 1
    for (backend, profile), rows in series.items():
        rows = [r for r in rows if r["speedup"] is not None]
        xs = [r["world_size"] for r in rows]
        top = max([top] + xs)
        ax.plot(xs, [r["speedup"] for r in rows], PROFILE_STYLE.get(profile, ("-", ""))[0], marker="o",
                color=BACKEND_COLORS.get(backend, OTHER_COLOR), label=f"{backend}/{profile}")
        for r in rows[1:]:
            ax.annotate(f"{100 * r['efficiency']:.0f}% efficient", (r["world_size"], r["speedup"]),
                        textcoords="offset points", xytext=(-10, -18), ha="right")
    ax.plot([1, top], [1, top], ":", color="black", label="ideal (linear)")
    ax.set(xlabel="devices (world size)", ylabel="speedup over 1 device (x)", title="Scaling of training throughput")
    ax.legend()
    return _save(plt, fig, path)


def write_plots(comp: Comparison, folder: str | Path) -> dict[str, Path]:
    """Draw every plot the data supports into ``folder``; return name -> path."""
    if not comp.groups:
        return {}
    folder = Path(folder)
    plt = _plt()
    made = {
        "throughput": throughput(plt, comp, folder / "throughput.png"),
        "curves_per_epoch": curves(plt, comp, folder / "curves_per_epoch.png", "epoch"),
        "curves_vs_time": curves(plt, comp, folder / "curves_vs_time.png", "time"),
        "memory": memory(plt, comp, folder / "memory.png"),
        "class_iou": class_iou(plt, comp, folder / "class_iou.png"),
        "step_time": step_times(plt, comp, folder / "step_time.png"),
        "energy": energy(plt, comp, folder / "energy.png") if comp.has_energy else None,
        "scaling": scaling(plt, comp, folder / "scaling.png"),
    }
    made = {k: v for k, v in made.items() if v is not None}
    log.info("wrote %d plots to %s", len(made), folder)
    return made
