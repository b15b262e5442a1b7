"""Group runs, take medians and spreads, check comparability, pick a baseline, state results.

Usage::

    from unetbench.report.compare import build_comparison
    comp = build_comparison(runs, baseline="cuda:parity")
    comp.groups[0].stats["samples_per_s"].median
    comp.speedups["gaudi_lazy/parity"]        # {"speedup": 1.31, "note": ...} or {"speedup": None, "reason": ...}

Groups are (backend, profile, world_size); only complete runs are aggregated. The spread of a
group is the min-max range over its repeated runs (n >= 2); with one run it is unknown. Two
groups are comparable when dataset checksum, crop, per-device batch size and epochs match, and,
inside one profile, the precision too; between groups of one backend, the device settings too
(cuDNN's autotuner, MIOpen's NHWC switch, how XPU steps were timed), where both recorded them.
Parity-vs-fast comparisons are allowed for speed but labelled. A speedup is never given between
groups that are not comparable.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import UserError
from ..core.math_label import math_label
from ..core.registry import BACKENDS, PROFILES, first_backend
from .energy import run_energy
from .fields import METRICS, comparability_values, per_class_iou, run_figures
from .load import RunRecord
from .noise import speed_verdict
from .workload import workload_of, workloads

log = logging.getLogger(__name__)
BACKEND_ORDER = list(BACKENDS)
PROFILE_ORDER = list(PROFILES)
SPREAD = "min-max over repeated runs"


@dataclass
class Stat:
    median: float | None
    lo: float | None = None
    hi: float | None = None
    n: int = 0

    def overlaps(self, other: "Stat") -> bool | None:
        """Whether the two run-to-run ranges overlap; None when neither has repeats."""
        if self.n < 2 and other.n < 2:
            return None
        return not (self.hi < other.lo or other.hi < self.lo)


@dataclass
class Group:
    backend: str
    profile: str
    world_size: int
    runs: list[RunRecord]
    figures: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Stat] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)       # comparability field -> value
    conflicts: dict[str, list] = field(default_factory=dict)   # fields that differ inside the group
    class_iou: dict[str, Stat] = field(default_factory=dict)
    workload: str = ""      # "MODEL x DATASET" when the runs span several workloads (report/matrix.py)

    @property
    def label(self) -> str:
        return (f"{self.backend}/{self.profile}" + (f" x{self.world_size}" if self.world_size > 1 else "")
                + (f" [{self.workload}]" if self.workload else ""))

    @property
    def math(self) -> str | None:
        """The arithmetic of the group's runs in words ("FP32, no TF32"); the setup table flags
        a group whose runs differ in it."""
        return math_label(self.runs[0].data["environment"].get("math_mode"))

    @property
    def nodes(self) -> Any:
        return self.runs[0].data["distributed"].get("nodes")


def _stat(values: list) -> Stat:
    # A run without a figure (None, or NaN in a hand-edited file) is left out of the median; the
    # table says so beside it ("2 of 3 runs": report/sections.py), never silently.
    nums = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not nums:
        return Stat(None, n=0)
    return Stat(statistics.median(nums), min(nums), max(nums), len(nums))


def _sort_key(key: tuple[str, str, int]) -> tuple:
    backend, profile, ws, *workload = key
    b = BACKEND_ORDER.index(backend) if backend in BACKEND_ORDER else len(BACKEND_ORDER)
    p = PROFILE_ORDER.index(profile) if profile in PROFILE_ORDER else len(PROFILE_ORDER)
    return (*workload, b, backend, p, profile, ws)


def make_groups(runs: list[RunRecord]) -> list[Group]:
    # Runs of different workloads (model x dataset) never share a group: each is named by its
    # workload once the runs span several, and differences() refuses to compare them.
    several = len(workloads(runs)) > 1
    buckets: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        if run.complete:
            ws = run.data["distributed"]["world_size"]
            buckets.setdefault((run.backend, run.profile, ws, workload_of(run.data) if several else ""),
                               []).append(run)
    groups = []
    for key in sorted(buckets, key=_sort_key):
        g = Group(*key[:3], runs=buckets[key], workload=key[3])
        g.figures = [run_figures(r) for r in g.runs]
        g.stats = {name: _stat([f[name] for f in g.figures]) for name in METRICS}
        per_run = [comparability_values(r.data) for r in g.runs]
        for name in per_run[0]:
            seen = sorted({str(v) for v in (pr[name] for pr in per_run) if not _unrecorded(name, v)})
            g.values[name] = next((pr[name] for pr in per_run if not _unrecorded(name, pr[name])), per_run[0][name])
            if len(seen) > 1:
                g.conflicts[name] = seen
        ious = [per_class_iou(r.data) for r in g.runs]
        names = list(dict.fromkeys(n for d in ious for n in d))
        g.class_iou = {n: _stat([d.get(n) for d in ious]) for n in names}
        groups.append(g)
    return groups


PER_BACKEND = ("device_settings", "container")   # each backend has its own; they must match within one


def _unrecorded(name: str, value: Any) -> bool:
    """Device settings or a container a run did not record (results from before they were): unknown, not different."""
    return name in PER_BACKEND and value is None


def _short(name: str, value: Any) -> str:
    return str(value)[:8] if name == "dataset" and value else str(value)


def differences(a: Group, b: Group) -> list[str]:
    """Why a and b are not comparable ([] when they are)."""
    reasons = [f"runs inside {g.label} differ in {k} ({' vs '.join(_short(k, v) for v in vals)})"
               for g in (a, b) for k, vals in g.conflicts.items()]
    for name, va in a.values.items():
        if name == "precision" and a.profile != b.profile:
            continue  # profiles choose their own numerics; cross-profile comparisons are labelled instead
        vb = b.values.get(name)
        if name in PER_BACKEND and (a.backend != b.backend or _unrecorded(name, va) or _unrecorded(name, vb)):
            continue  # each device has its own; they must match only between runs of one backend that recorded them
        if va != vb and name not in a.conflicts and name not in b.conflicts:
            reasons.append(f"{name} differs ({_short(name, va)} vs {_short(name, vb)})")
    return reasons


def find_baseline(groups: list[Group], spec: str | None) -> Group | None:
    """``BACKEND``, ``BACKEND:PROFILE`` or ``BACKEND:PROFILE:RANKS`` (``cuda:fast:8``); default: the
    registry's first backend in the parity profile (CUDA), else the first group."""
    if not groups:
        return None
    if not spec:
        single = [g for g in groups if g.world_size == 1] or groups
        return next((g for g in single if g.backend == first_backend() and g.profile == "parity"), single[0])
    parts = spec.replace("/", ":").split(":")
    matches = [g for g in groups if g.backend == parts[0]
               and (len(parts) < 2 or g.profile == parts[1])
               and (len(parts) < 3 or str(g.world_size) == parts[2])]
    if not matches:
        choices = ", ".join(f"{g.backend}:{g.profile}" + (f":{g.world_size}" if g.world_size > 1 else "") for g in groups)
        raise UserError(f"--baseline {spec} matches no complete run; choose one of: {choices}")
    matches.sort(key=lambda g: (g.world_size != 1, PROFILE_ORDER.index(g.profile) if g.profile in PROFILE_ORDER else 9))
    return matches[0]


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def speedup_vs(group: Group, base: Group) -> dict[str, Any]:
    reasons = differences(group, base)
    if reasons:
        return {"speedup": None, "reason": "not comparable: " + "; ".join(reasons)}
    value = ratio(group.stats["samples_per_s"].median, base.stats["samples_per_s"].median)
    note = f"different profiles ({group.profile} vs {base.profile})" if group.profile != base.profile else None
    # With repeats, a speedup whose 95% intervals overlap the baseline's is not claimed (noise.py).
    verdict = speed_verdict([f["samples_per_s"] for f in group.figures], [f["samples_per_s"] for f in base.figures])
    return {"speedup": value, "note": note, **verdict}


def _spread_words(a: Stat, b: Stat) -> str:
    overlap = a.overlaps(b)
    if overlap is None:
        return "one run each, so the run-to-run spread is unknown"
    if overlap:
        return f"inside the run-to-run spread ({SPREAD}), so not a clear difference"
    single = "; one side has a single run" if min(a.n, b.n) < 2 else ""
    return f"outside the run-to-run spread ({SPREAD}{single})"


def best_statement(groups: list[Group], metric: str, verb: str, cross_only: bool = False) -> list[str]:
    """'X is <verb>: r x Y's figure ...' for the best group and its closest comparable rival."""
    ranked = [g for g in groups if g.stats[metric].median is not None]
    if not ranked:
        return []
    meta = METRICS[metric]
    ranked.sort(key=lambda g: g.stats[metric].median, reverse=meta.higher_is_better)
    best = ranked[0]
    rivals = [g for g in ranked[1:] if not differences(best, g)]
    excluded = [(g, differences(best, g)) for g in ranked[1:] if differences(best, g)]
    b = best.stats[metric]
    lines = []
    if rivals and cross_only and rivals[0].profile == best.profile:
        return []  # the same pair was already stated inside its profile
    if rivals and rivals[0].stats[metric].median == b.median:
        tied = [g.label for g in rivals if g.stats[metric].median == b.median]
        lines.append(f"{best.label} and {', '.join(tied)} tie on {meta.label} ({b.median:.{meta.digits}f}).")
    elif rivals:
        r = rivals[0].stats[metric]
        cross = f"; different profiles ({best.profile} vs {rivals[0].profile})" if best.profile != rivals[0].profile else ""
        lines.append(f"{best.label} is {verb}: {ratio(b.median, r.median):.2f}x the {meta.label} of "
                     f"{rivals[0].label} ({b.median:.{meta.digits}f} vs {r.median:.{meta.digits}f}); "
                     f"{_spread_words(b, r)}{cross}.")
    elif len(ranked) > 1:
        lines.append(f"{best.label} has the best {meta.label} ({b.median:.{meta.digits}f}), "
                     f"but no other group is comparable with it.")
    for g, reasons in excluded:
        lines.append(f"  {g.label} not compared with {best.label}: not comparable: {'; '.join(reasons)}.")
    return lines


def scaling_rows(groups: list[Group]) -> list[dict[str, Any]]:
    """Throughput, speedup and efficiency (speedup / world_size) against the 1-device group."""
    rows = []
    for single in (g for g in groups if g.world_size == 1):
        multi = [g for g in groups if g.backend == single.backend and g.profile == single.profile and g.world_size > 1]
        if not multi:
            continue
        for g in [single] + multi:
            reasons = differences(g, single)
            speed = None if reasons else ratio(g.stats["samples_per_s"].median, single.stats["samples_per_s"].median)
            rows.append({"group": g.label, "backend": g.backend, "profile": g.profile, "world_size": g.world_size,
                         "nodes": g.nodes, "samples_per_s": g.stats["samples_per_s"].median, "speedup": speed,
                         "efficiency": None if speed is None else speed / g.world_size,
                         "note": "not comparable: " + "; ".join(reasons) if reasons else None})
    return rows


@dataclass
class Comparison:
    runs: list[RunRecord]
    groups: list[Group]
    baseline: Group | None
    speedups: dict[str, dict[str, Any]]
    statements: list[str]
    scaling: list[dict[str, Any]]
    has_energy: bool


def build_comparison(runs: list[RunRecord], baseline: str | None = None) -> Comparison:
    for run in runs:
        if run.complete and run.energy is None:
            run.energy = run_energy(run)
    groups = make_groups(runs)
    base = find_baseline(groups, baseline)
    speedups = {g.label: speedup_vs(g, base) for g in groups} if base else {}
    statements: list[str] = []
    for workload, ws in sorted({(g.workload, g.world_size) for g in groups}):   # never across workloads
        same = [g for g in groups if g.world_size == ws and g.workload == workload]
        profiles = sorted({g.profile for g in same}, key=lambda p: PROFILE_ORDER.index(p) if p in PROFILE_ORDER else 9)
        scopes = [(f"{p} profile" + (f", {ws} devices" if ws > 1 else ""), [g for g in same if g.profile == p]) for p in profiles]
        if len(profiles) > 1:  # the overall ranking crosses profiles: allowed for speed, and labelled
            scopes.append(("all profiles" + (f", {ws} devices" if ws > 1 else ""), same))
        for scope, members in scopes:
            if len(members) < 2:
                continue
            statements += [f"[{scope}] {s}" if not s.startswith("  ") else s
                           for s in best_statement(members, "samples_per_s", "the fastest", scope.startswith("all"))
                           + best_statement(members, "test_miou", "the most accurate", scope.startswith("all"))]
    for g in groups:
        for k, vals in g.conflicts.items():
            statements.append(f"Warning: the runs of {g.label} differ in {k} ({' vs '.join(_short(k, v) for v in vals)}); "
                              f"its median mixes unlike runs.")
    has_energy = any(f["energy_kj"] is not None for g in groups for f in g.figures)
    return Comparison(runs, groups, base, speedups, statements, scaling_rows(groups), has_energy)
