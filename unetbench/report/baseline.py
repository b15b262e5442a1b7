"""This run folder against an earlier one (--baseline-dir): a driver or software upgrade, a new node.

Usage::

    python3 compare_results.py runs/new/results --baseline-dir runs/old/results
    table = baseline_table(comp, load_baseline("runs/old/results"), tolerance=0.05)

Groups are matched by label (backend/profile[, devices]). For each, throughput, test mIoU and
time to target now and before, the relative change, and a flag when the change is outside
the noise: with 3+ runs on each side when the 95% bootstrap intervals separate, with fewer
(noise unknown) when the change exceeds the tolerance (default 5%), which the table says.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import UserError
from .compare import Comparison, build_comparison, differences
from .load import load_runs
from .noise import change_flag
from .tables import Table, fmt

WATCHED = [("samples_per_s", "samples/s", 1), ("test_miou", "test mIoU", 4), ("time_to_target_s", "time to target s", 1)]


def load_baseline(folder: str | Path) -> Comparison:
    """The earlier run folder's comparison; a clear error when it holds no complete run."""
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"--baseline-dir {path}: no such folder; name the results folder of the earlier run "
                        "(e.g. runs/<date>/results)")
    runs = load_runs([path])
    comp = build_comparison(runs)
    if not comp.groups:
        found = f"{len(runs)} result files, none complete" if runs else "no results_*.json"
        raise UserError(f"--baseline-dir {path} holds {found}; name the results folder of an earlier, "
                        "finished run (e.g. runs/<date>/results)")
    return comp


def baseline_table(comp: Comparison, before: Comparison, tolerance: float = 0.05) -> Table:
    old = {g.label: g for g in before.groups}
    rows, notes = [], []
    for g in comp.groups:
        b = old.get(g.label)
        if b is None:
            rows.append([g.label, "-", "-", "-", "-", "no earlier run"])
            continue
        reasons = differences(g, b)
        if reasons:
            notes.append(f"{g.label}: not comparable with the earlier run: {'; '.join(reasons)}")
            rows.append([g.label, "-", "-", "-", "-", "not comparable"])
            continue
        for metric, label, digits in WATCHED:
            new_values = [f[metric] for f in g.figures]
            old_values = [f[metric] for f in b.figures]
            now, then = g.stats[metric].median, b.stats[metric].median
            if now is None and then is None:
                continue
            change = f"{100 * (now / then - 1):+.1f}%" if now is not None and then else "-"
            flagged, why = change_flag(new_values, old_values, tolerance)
            verdict = ("CHANGED: " if flagged else "within noise: " if flagged is False else "") + why
            rows.append([g.label, label, fmt(then, digits), fmt(now, digits), change, verdict])
    for label in old:
        if label not in {g.label for g in comp.groups}:
            rows.append([label, "-", "-", "-", "-", "only in the earlier run"])
    notes.append("earlier -> now: medians over each folder's complete runs; CHANGED = outside the noise "
                 f"(95% bootstrap intervals with 3+ runs a side, else a change beyond {tolerance:.0%}).")
    return Table("Against the earlier run (--baseline-dir)", ["group", "figure", "earlier", "now", "change", "verdict"],
                 rows, notes, "baseline_dir")


def baseline_statements(table: Table) -> list[str]:
    """Findings lines for every flagged change."""
    return [f"Changed since the earlier run: {row[0]} {row[1]} {row[2]} -> {row[3]} ({row[4]})"
            for row in table.rows if row[5].startswith("CHANGED")]
