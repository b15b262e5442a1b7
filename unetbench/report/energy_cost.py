"""The report's in-process energy, cost and top-operation figures.

    python3 compare_results.py results/ --site site.env      # cost columns from <GROUP>_PRICE_PER_HOUR
    apply_prices(runs, "site.env")       # run.price_per_hour per run, from its backend's site group
    energy_figures(data, price)          # j_per_sample (gross), net_j_per_sample, idle_w, samples_per_s_per_w, ...
    energy_method(data)                  # "counter", "power 20 Hz", "none", "unknown" (results before it)
    top_operations_table(comp)           # the traced runs' top operations, side by side
    (the energy-per-sample plot: energy_plots.py)

Energy per sample comes from the results' own ``energy`` section (metered in process over the
steady window, unetbench/training/energy_windows.py); runs without it have none (the monitor CSV gives
only the whole window's energy, in the Energy table). Cost: the site's price of one
device-hour times the run's devices, over the steady throughput (per million samples) or the
mean epoch with its evaluation (per epoch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from .tables import Table

TOP_SHOWN = 10   # operations per group in the side-by-side table


def _get(data: dict, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def default_site() -> Path | None:
    """The site.env the compare job was given (UNETBENCH_SITE), when it is a file."""
    value = os.environ.get("UNETBENCH_SITE", "")
    return Path(value) if value and value != "none" and Path(value).is_file() else None


def apply_prices(runs: list, site_path: Path | None) -> None:
    if site_path is None:
        return
    from ..cluster.site_settings import Site, SiteError
    try:
        site = Site.load(site_path)
    except SiteError as err:
        raise UserError(f"--site: {err}") from None
    problems = [p for p in site.problems([]) if "PRICE_PER_HOUR" in p]
    kinds = {r.backend for r in runs if r.backend}
    problems += [p for p in site.problems(sorted(kinds)) if "PRICE_PER_HOUR" in p]
    if problems:
        raise UserError(f"{site_path}: {problems[0]}")
    for r in runs:
        if r.backend:
            r.price_per_hour = site.price_per_hour(r.backend)


def energy_figures(data: dict, price_per_hour: float | None) -> dict[str, Any]:
    energy = data.get("energy") if isinstance(data.get("energy"), dict) else {}
    figures = {"j_per_sample": energy.get("j_per_sample"), "net_j_per_sample": energy.get("net_j_per_sample"),
               "idle_w": energy.get("idle_w"), "samples_per_s_per_w": energy.get("samples_per_s_per_w"),
               "steady_power_w": _get(energy, "steady", "avg_power_w"), "cost_per_epoch": None,
               "cost_per_m_samples": None}
    if price_per_hour is None:
        return figures
    devices = _get(data, "distributed", "world_size") or 1
    per_second = price_per_hour * devices / 3600.0
    rate = _get(data, "timing", "steady_samples_per_s")
    if rate:
        figures["cost_per_m_samples"] = per_second * 1e6 / rate
    history = data.get("history") or []
    seconds = [(row.get("epoch_s") or 0) + (row.get("eval_s") or 0) for row in history]
    if seconds:
        figures["cost_per_epoch"] = per_second * sum(seconds) / len(seconds)
    return figures


def energy_method(data: dict) -> str:
    """How the run's in-process joules were measured, for the Energy table: the vendor's counter,
    power integrated at N Hz, or none; "unknown" for results written before the method was."""
    energy = data.get("energy") if isinstance(data.get("energy"), dict) else None
    if energy is None or "method" not in energy:
        return "unknown"
    method, hz = energy["method"] or "none", energy.get("sample_hz")
    if "power_integration" in method:
        method = method.replace("power_integration", f"power {hz:g} Hz" if hz else "power")
    return method + (" (fallback)" if energy.get("note") else "")


def top_operations_table(comp) -> Table | None:
    """Each traced group's top operations and category shares, side by side (one traced run per group)."""
    traced = [(g, next((r.data["trace"] for r in g.runs if (r.data or {}).get("trace")), None)) for g in comp.groups]
    traced = [(g, t) for g, t in traced if t and t.get("top_operations")]
    if not traced:
        return None
    headers = ["#"] + [f"{g.label} ({t['time_basis']})" for g, t in traced]
    rows = []
    for i in range(TOP_SHOWN):
        row = [str(i + 1)]
        for _, t in traced:
            ops = t["top_operations"]
            row.append(f"{ops[i]['name']} {100 * (ops[i]['share'] or 0):.1f}%" if i < len(ops) else "")
        rows.append(row)
    categories = list(traced[0][1]["category_share"])
    for name in categories:
        rows.append([name] + [f"{100 * t['category_share'].get(name, 0):.1f}%" for _, t in traced])
    notes = ["Shares of self time (device time where the profiler saw the device, else CPU) over the traced "
             "steps (--trace-steps), which count in no throughput figure; the category rows sum to 100%."]
    files = [f"{g.label}: {t['file']}" + (f" (nsys: {t['nsys_file']})" if t.get("nsys_file") else "")
             for g, t in traced]
    notes.append("Traces: " + "; ".join(files))
    return Table("Top operations (profiler trace)", headers, rows, notes, "top_operations")
