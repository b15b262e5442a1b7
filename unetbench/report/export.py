"""Write the comparison as CSV (one row per run), JSON (the summary) and Markdown (the report).

Usage::

    from unetbench.report.export import write_csv, write_json, write_markdown
    write_csv("summary.csv", comp); write_json("summary.json", comp, tables)
    write_markdown("report.md", comp, tables, plots={"throughput": Path("plots/throughput.png")})

Every file is written atomically (unetbench.core.atomic): a reader never sees half a report. The JSON
summary goes through results.clean_for_json, as the results files do: NaN and infinities
become null.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json, atomic_write_text
from ..training.results import clean_for_json
from .compare import SPREAD, Comparison
from .fields import METRICS, comparability_values, per_class_iou, run_figures
from .tables import Table, as_records, render_markdown

SUMMARY_FORMAT = "unetbench-comparison"
SUMMARY_VERSION = 1


def run_rows(comp: Comparison) -> list[dict[str, Any]]:
    """One flat dict per run, complete or not; per-class IoU as iou_<class> columns."""
    group_of = {id(r): g for g in comp.groups for r in g.runs}
    rows = []
    for r in comp.runs:
        d = r.data or {}
        dist, env = d.get("distributed") or {}, d.get("environment") or {}
        g = group_of.get(id(r))
        row: dict[str, Any] = {
            "file": str(r.path), "run_name": r.name, "state": r.state, "problem": r.problem or "",
            "backend": r.backend, "profile": r.profile, "group": g.label if g else "",
            "world_size": dist.get("world_size"), "nodes": dist.get("nodes"),
            "devices_per_node": dist.get("devices_per_node"), "global_batch": dist.get("global_batch"),
            "device_name": env.get("device_name"), "host": env.get("host"), "torch": env.get("torch"),
            "started_at": d.get("started_at"), "finished_at": d.get("finished_at"),
        }
        row.update({f"{k}": v for k, v in (comparability_values(d) if d else {}).items()})
        row.update(run_figures(r) if d else {m: None for m in METRICS})
        row["energy_source"] = (r.energy or {}).get("source")
        speed = comp.speedups.get(g.label, {}) if g else {}
        row["group_speedup_vs_baseline"] = speed.get("speedup")
        row.update({f"iou_{name}": v for name, v in (per_class_iou(d) if d.get("test") else {}).items()})
        rows.append(row)
    return rows


def csv_text(comp: Comparison) -> str:
    rows = run_rows(comp)
    ordered = sorted(rows, key=lambda row: row["state"] != "complete")  # a full row fixes the column order
    columns = list(dict.fromkeys(k for row in ordered for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return buf.getvalue()


def summary(comp: Comparison, tables: list[Table]) -> dict[str, Any]:
    groups = []
    for g in comp.groups:
        speed = comp.speedups.get(g.label, {})
        groups.append({
            "group": g.label, "backend": g.backend, "profile": g.profile, "world_size": g.world_size,
            "runs": [r.name for r in g.runs], "comparability": g.values, "conflicts": g.conflicts,
            "stats": {m: {"median": s.median, "min": s.lo, "max": s.hi, "n": s.n} for m, s in g.stats.items()},
            "class_iou": {n: s.median for n, s in g.class_iou.items()},
            "speedup_vs_baseline": speed.get("speedup"), "speedup_note": speed.get("note") or speed.get("reason"),
        })
    return clean_for_json({
        "format": SUMMARY_FORMAT, "format_version": SUMMARY_VERSION,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "spread": SPREAD, "baseline": comp.baseline.label if comp.baseline else None,
        "runs": [{"file": str(r.path), "run_name": r.name, "state": r.state, "problem": r.problem,
                  "backend": r.backend, "profile": r.profile} for r in comp.runs],
        "groups": groups, "statements": comp.statements, "scaling": comp.scaling,
        "tables": {t.key: as_records(t) for t in tables},
    })


def markdown_text(comp: Comparison, tables: list[Table], plots: dict[str, Path] | None = None,
                  relative_to: Path | None = None) -> str:
    out = ["# unetbench comparison", "",
           f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from {len(comp.runs)} result files; "
           f"baseline {comp.baseline.label if comp.baseline else 'none'}; spread = {SPREAD}.", ""]
    if comp.statements:
        out += ["## Findings", ""] + [("  - " if s.startswith("  ") else "- ") + s.strip() for s in comp.statements] + [""]
    out += [render_markdown(t) for t in tables]
    if plots:
        out += ["## Plots", ""]
        for name, path in plots.items():
            link = Path(os.path.relpath(Path(path).resolve(), relative_to)) if relative_to else Path(path)
            out += [f"### {name.replace('_', ' ')}", "", f"![{name}]({link.as_posix()})", ""]
    return "\n".join(out)


def write_csv(path: str | Path, comp: Comparison) -> None:
    atomic_write_text(path, csv_text(comp))


def write_json(path: str | Path, comp: Comparison, tables: list[Table]) -> None:
    atomic_write_json(path, summary(comp, tables))


def write_markdown(path: str | Path, comp: Comparison, tables: list[Table], plots: dict[str, Path] | None = None) -> None:
    atomic_write_text(path, markdown_text(comp, tables, plots, relative_to=Path(path).resolve().parent))
