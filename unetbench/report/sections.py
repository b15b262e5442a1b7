"""The report's tables, built from a Comparison.

Usage::

    from unetbench.report.sections import build_tables
    for table in build_tables(comparison):
        print(render_text(table))

A figure with repeated runs reads "median [min-max]"; a speedup that cannot be given reads
"n/c" and a numbered note says which field differs.
"""

from __future__ import annotations

from ..core.math_label import math_label
from .compare import SPREAD, Comparison, Group
from .energy_cost import energy_method
from .fields import METRICS
from .noise import WITHIN_NOISE
from .tables import Table, fmt
from .timetotarget import noise_table, time_to_target_table

NO_TF32 = math_label({"precision": "fp32", "tf32": False})
_STATE_ORDER = ["complete", "interrupted", "failed", "running", "corrupt", "schema-mismatch", "invalid", "unreadable", "missing"]


def cell(group: Group, metric: str, spread: bool = False) -> str:
    stat = group.stats[metric]
    digits = METRICS[metric].digits
    if stat.median is None:
        return METRICS[metric].missing
    text = fmt(float(stat.median), digits)
    if spread and stat.n >= 2:
        text += f" [{stat.lo:.{digits}f}-{stat.hi:.{digits}f}]"
    if stat.n < len(group.runs):   # some runs have no value for it: say over how many it is
        text += f" ({stat.n} of {len(group.runs)} runs)"
    return text


def _metric_table(comp: Comparison, key: str, title: str, metrics: list[str], spread: tuple = ()) -> Table:
    # The math beside every figure: parity's "FP32, no TF32" is slower than the TF32 that
    # published GPU figures use by default, and must never be read as comparable with them.
    headers = ["group", "n", "math"] + [METRICS[m].label for m in metrics]
    rows = [[g.label, str(len(g.runs)), g.math or "-"] + [cell(g, m, m in spread) for m in metrics]
            for g in comp.groups]
    notes = [f"n = complete runs; figures are medians; [a-b] = {SPREAD}."] if any(len(g.runs) > 1 for g in comp.groups) else []
    if any(g.math == NO_TF32 for g in comp.groups):
        notes.append(f"{NO_TF32}: the parity profile's true FP32; published FP32 GPU figures use TF32, "
                     "comparable only with runs made with --allow-tf32.")
    return Table(title, headers, rows, notes, key)


def runs_table(comp: Comparison) -> Table:
    rows = []
    for r in sorted(comp.runs, key=lambda r: (_STATE_ORDER.index(r.state), str(r.path))):
        ws = r.data["distributed"]["world_size"] if r.data else None
        rows.append([r.path.name, r.name, r.backend or "-", r.profile or "-", fmt(ws), r.state, r.problem or ""])
    counts = {s: sum(r.state == s for r in comp.runs) for s in _STATE_ORDER}
    notes = [", ".join(f"{n} {s}" for s, n in counts.items() if n) + "; only complete runs enter the tables below."]
    return Table("Runs", ["file", "run", "backend", "profile", "world", "state", "note"], rows, notes, "runs")


# Column headings of the fields that must match (report/fields.py: comparability_values).
SETUP_HEADINGS = {"model": "model", "dataset": "dataset sha256", "crop": "crop", "batch_size": "batch/device",
                  "epochs": "epochs", "precision": "math", "device_settings": "device settings",
                  "container": "container image"}


# Shown only where some run has one: a study without containers gets no column of "none".
SHOWN_WHEN_USED = {"container": (None, "none")}


def _setup_cell(g, key: str) -> str:
    if key in g.conflicts:
        return "mixed: " + "/".join(g.conflicts[key])
    value = g.values[key]
    return str(value)[:12] if key == "dataset" and value else fmt(value)


def setup_table(comp: Comparison) -> Table:
    keys = [k for k in (comp.groups[0].values if comp.groups else {})
            if k not in SHOWN_WHEN_USED
            or any(g.values.get(k) not in SHOWN_WHEN_USED[k] or k in g.conflicts for g in comp.groups)]
    rows = [[g.label, str(len(g.runs)), *(_setup_cell(g, k) for k in keys), g.runs[0].data["environment"]["device_name"]]
            for g in comp.groups]
    notes = ["Runs compare only when model, dataset checksum, crop, per-device batch and epochs match, "
             "precision too inside one profile, and device settings (the device's own figure-deciding "
             "switches) and the container image (runtime, image, digest) between runs of one backend."]
    headings = ["group", "n"] + [SETUP_HEADINGS.get(k, k) for k in keys] + ["device"]
    return Table("Setup (what must match)", headings, rows, notes, "setup")


def performance_table(comp: Comparison) -> Table:
    metrics = ["samples_per_s", "achieved_tflops", "peak_tflops", "peak_share_pct", "step_p50_ms", "step_p90_ms",
               "train_s", "warmup_s", "data_wait_pct"]
    table = _metric_table(comp, "performance", "Performance (steady state)", metrics, spread=("samples_per_s", "step_p50_ms"))
    base = comp.baseline
    table.headers.append(f"speedup vs {base.label}" if base else "speedup")
    marks = 0
    for g, row in zip(comp.groups, table.rows):
        s = comp.speedups.get(g.label, {})
        if s.get("speedup") is not None and s.get("within_noise") and g is not base:
            row.append(f"{WITHIN_NOISE} ({s['speedup']:.2f}x)")   # the 95% intervals overlap: no claim
        elif s.get("speedup") is not None:
            row.append(f"{s['speedup']:.2f}x" + ("*" if s.get("note") else ""))
        else:
            marks += 1
            table.notes.append(f"[{marks}] {g.label}: {s.get('reason', 'no baseline')}")
            row.append(f"n/c [{marks}]")
    if any(s.get("note") for s in comp.speedups.values()):
        table.notes.append("* different profiles (parity vs fast): a speed comparison only, numerics differ.")
    if any(s.get("within_noise") for label, s in comp.speedups.items() if base is None or label != base.label):
        table.notes.append(f"{WITHIN_NOISE} = the 95% bootstrap intervals of the median samples/s overlap the "
                           "baseline's: the ratio in brackets is not a measured speedup.")
    table.notes.append("TFLOP/s = steady samples/s per device x training FLOPs per sample (forward + backward); "
                       "peak = the device's dense matmul peak in the run's precision, measured by each run before "
                       "warm-up; % of measured peak = TFLOP/s / peak: every chip against its own ceiling. n/a: no "
                       "peak (--no-peak, or results from before runs measured it).")
    table.notes.append("warm-up = compile/autotune steps kept out of samples/s; data wait = share of measured time "
                       "the host was blocked on the loader (not device idle time: the device may still be busy "
                       "with queued steps).")
    return table


def memory_table(comp: Comparison) -> Table:
    return _metric_table(comp, "memory", "Memory (GB = 1e9 bytes)", ["model_gb", "peak_allocated_gb", "peak_reserved_gb"])


def quality_table(comp: Comparison) -> Table:
    metrics = ["test_accuracy", "test_miou", "test_precision", "test_recall", "test_f1", "best_val_miou", "time_to_best_s"]
    table = _metric_table(comp, "quality", "Quality (test split; best = highest validation mIoU)", metrics,
                          spread=("test_miou",))
    return table


def class_iou_table(comp: Comparison) -> Table:
    names = list(dict.fromkeys(n for g in comp.groups for n in g.class_iou))
    rows = []
    for name in names:
        row = [name]
        for g in comp.groups:
            stat = g.class_iou.get(name)
            row.append(fmt(float(stat.median), 3) if stat and stat.median is not None else "-")
        rows.append(row)
    return Table("Per-class test IoU (median over runs)", ["class"] + [g.label for g in comp.groups], rows, [], "class_iou")


def energy_table(comp: Comparison) -> Table:
    metrics = ["energy_kj", "avg_power_w", "samples_per_j", "j_per_sample", "net_j_per_sample", "idle_w",
               "samples_per_s_per_w", "steady_power_w"]
    metrics += [m for m in ("cost_per_epoch", "cost_per_m_samples") if any(g.stats[m].median is not None for g in comp.groups)]
    table = _metric_table(comp, "energy", "Energy (training window)", metrics)
    table.headers += ["source", "method"]
    for g, row in zip(comp.groups, table.rows):
        row.append(", ".join(sorted({(r.energy or {}).get("source", "-").split(":")[0] for r in g.runs})))
        row.append(", ".join(sorted({energy_method(r.data or {}) for r in g.runs})))
    table.notes.append("samples/J = training samples (epochs x train split) / energy; the window includes evaluation.")
    table.notes.append("gross and net J/sample, samples/s/W and steady W: the steady training window only, metered in process at the "
                       "timer's synchronised boundaries (warm-up, traced steps and evaluation excluded); cost = "
                       "<GROUP>_PRICE_PER_HOUR of site.env x devices, per epoch (with its evaluation) and per million "
                       "steady samples.")
    table.notes.append("gross J/sample: everything the devices drew; idle W: their power idling before warm-up "
                       "(--idle-s, after --cooldown-s); net J/sample = (steady joules - idle W x steady seconds) / "
                       "samples. method (of the in-process figures): counter = the vendor's energy counter; power N Hz = power readings "
                       "integrated (no usable counter); (fallback) = the counter raised, read 0 or went backwards, "
                       "see the results' energy.note; unknown = results from before the method was recorded.")
    return table


def scaling_table(comp: Comparison) -> Table:
    rows, notes = [], []
    for r in comp.scaling:
        speed = fmt(r["speedup"], 2) + "x" if r["speedup"] is not None else f"n/c [{len(notes) + 1}]"
        if r["note"]:
            notes.append(f"[{len(notes) + 1}] {r['group']}: {r['note']}")
        eff = f"{100 * r['efficiency']:.0f}%" if r["efficiency"] is not None else "-"
        rows.append([r["group"], str(r["world_size"]), fmt(r["nodes"]), fmt(None if r["samples_per_s"] is None else float(r["samples_per_s"]), 1), speed, eff])
    notes.append("speedup against the 1-device run of the same backend and profile; efficiency = speedup / devices.")
    return Table("Scaling", ["group", "devices", "nodes", "samples/s", "speedup", "efficiency"], rows, notes, "scaling")


def build_tables(comp: Comparison) -> list[Table]:
    tables = [runs_table(comp)]
    if comp.groups:
        tables += [setup_table(comp), performance_table(comp), memory_table(comp), quality_table(comp),
                   class_iou_table(comp)]
        tables += [t for t in (time_to_target_table(comp), noise_table(comp)) if t is not None]
        if comp.has_energy or any(g.stats["cost_per_m_samples"].median is not None for g in comp.groups):
            tables.append(energy_table(comp))
        if comp.scaling:
            tables.append(scaling_table(comp))
    return tables
