"""The benchmark matrix: rows = workloads (model x dataset), columns = backends, one number per cell.

    python3 compare_results.py results/          # prints the matrix when the runs span several workloads
    table = matrix_table(comp)                   # a report.tables.Table, or None for one workload

A cell holds the steady samples/s (median over the repeated runs of that backend, profile and
world size on that workload) and the speedup against the baseline backend's group on the same
workload; a speedup is given only where compare.differences finds the two groups comparable (same
dataset checksum, crop, batch, epochs...), never across workloads: each workload is its own
comparison. The baseline is --baseline's backend (default: cuda, else the first backend found
on that workload), in the same profile and world size as the cell when it has one.
"""

from __future__ import annotations

from typing import Any

from ..core.registry import BACKENDS, first_backend
from .compare import Group, differences, ratio
from .tables import Table, fmt
from .workload import workload_of


def _column(group: Group) -> str:
    return f"{group.backend}/{group.profile}" + (f" x{group.world_size}" if group.world_size > 1 else "")


def _baseline(members: list[Group], spec: str | None, like: Group) -> Group | None:
    backend = (spec or "").replace("/", ":").split(":")[0] or first_backend()
    same = [g for g in members if g.backend == backend] or \
           ([] if spec else [g for g in members if g.backend == sorted({m.backend for m in members},
                                                                        key=_backend_rank)[0]])
    for g in same:
        if g.profile == like.profile and g.world_size == like.world_size:
            return g
    return same[0] if same else None


def _backend_rank(name: str):
    order = list(BACKENDS)
    return (order.index(name) if name in order else len(order), name)


def matrix_cells(groups: list[Group], baseline: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{workload: {column: {"samples_per_s", "speedup", "baseline", "note"}}}."""
    by_workload: dict[str, list[Group]] = {}
    for g in groups:
        by_workload.setdefault(workload_of(g.runs[0].data), []).append(g)
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for workload, members in sorted(by_workload.items()):
        row = cells.setdefault(workload, {})
        for g in members:
            base = _baseline(members, baseline, g)
            reasons = differences(g, base) if base is not None else ["no baseline run on this workload"]
            speed = g.stats["samples_per_s"].median
            row[_column(g)] = {
                "samples_per_s": speed, "baseline": _column(base) if base is not None else None,
                "speedup": None if reasons else ratio(speed, base.stats["samples_per_s"].median),
                "note": "; ".join(reasons) or None}
    return cells


def matrix_table(comp, baseline: str | None = None, always: bool = False) -> Table | None:
    """The matrix as a report table; None when the runs hold one workload (unless ``always``)."""
    cells = matrix_cells(comp.groups, baseline)
    if len(cells) < 2 and not always:
        return None
    columns = sorted({c for row in cells.values() for c in row},
                     key=lambda c: (_backend_rank(c.split("/")[0]), c))
    rows, notes = [], []
    for workload, row in cells.items():
        line = [workload]
        for column in columns:
            cell = row.get(column)
            if cell is None:
                line.append("-")
                continue
            speed = "-" if cell["speedup"] is None else f"{cell['speedup']:.2f}x"
            line.append(f"{fmt(cell['samples_per_s'], 1)} ({speed})")
            if cell["note"] and cell["baseline"] != column:
                notes.append(f"{workload}, {column}: no speedup: {cell['note']}")
        rows.append(line)
    base = (baseline or first_backend()).split(":")[0]
    notes.insert(0, f"cells: steady samples/s (speedup vs {base} on the same workload, same profile where run); "
                    "runs of different workloads are never compared")
    return Table("Benchmark matrix", ["workload", *columns], rows, notes, key="matrix")
