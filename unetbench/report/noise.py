"""Run-to-run noise: MLPerf-style time to target, bootstrap intervals, "within noise" verdicts.

Usage::

    from unetbench.report.noise import mlperf_time, bootstrap_interval, intervals_overlap
    mlperf_time([61.0, 58.2, 70.1, 59.9, 60.4])   # TimeScore(value=60.1, method="MLPerf: mean of 3 ...")
    lo, hi = bootstrap_interval([251.0, 249.3, 255.1])   # 95% interval of the median
    intervals_overlap((240, 260), (250, 270))           # True: a speedup here is within noise

Time to target follows MLPerf Training's scoring: with at least 5 runs, drop the fastest and
the slowest and average the rest; a run that did not reach the target counts as the slowest,
and if another one also missed it the set has no score. With fewer runs the median is
given and named so. Throughput gets the median and a 95% percentile-bootstrap interval of the
median (seeded: the same report every time); two groups whose intervals overlap are "within
noise" and no speedup is claimed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

MLPERF_MIN_RUNS = 5
MIN_RUNS_FOR_INTERVAL = 3
BOOTSTRAP_RESAMPLES = 2000
LEVEL = 0.95
WITHIN_NOISE = "within noise"


@dataclass
class TimeScore:
    value: float | None     # seconds, None when the target was not reached (or no runs)
    method: str             # how value was obtained, for the table's note column
    reached: int            # runs that reached the target
    runs: int


def mlperf_time(times: list[float | None]) -> TimeScore:
    """``times``: each run's time to target, None for a run that did not reach it."""
    n = len(times)
    reached = sorted(t for t in times if t is not None)
    if not n:
        return TimeScore(None, "no runs", 0, 0)
    if n >= MLPERF_MIN_RUNS:
        ordered = reached + [math.inf] * (n - len(reached))   # a miss is the slowest run
        kept = ordered[1:-1]
        if math.inf in kept:
            return TimeScore(None, f"not reached in {n - len(reached)} of {n} runs (MLPerf allows one)", len(reached), n)
        return TimeScore(sum(kept) / len(kept), f"MLPerf: mean of {len(kept)} after dropping the fastest and slowest "
                         f"of {n}", len(reached), n)
    if len(reached) < n:
        return TimeScore(None, f"not reached in {n - len(reached)} of {n} runs", len(reached), n)
    if n == 1:
        return TimeScore(reached[0], "single run", 1, 1)
    return TimeScore(statistics.median(reached), f"median of {n} (MLPerf scoring needs {MLPERF_MIN_RUNS} runs)", n, n)


def bootstrap_interval(values: list[float], level: float = LEVEL, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the median; None with fewer than 3 values."""
    data = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(data) < MIN_RUNS_FOR_INTERVAL:
        return None
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, len(data), size=(resamples, len(data)))], axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(medians, [tail, 100 - tail])
    return float(lo), float(hi)


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    """True when the two intervals overlap; None when either is unknown."""
    if a is None or b is None:
        return None
    return not (a[1] < b[0] or b[1] < a[0])


def speed_verdict(values: list[float], base_values: list[float]) -> dict:
    """Whether a throughput difference is real: {"within_noise": bool | None, "interval", "base_interval"}."""
    a, b = bootstrap_interval(values), bootstrap_interval(base_values)
    return {"within_noise": intervals_overlap(a, b), "interval": a, "base_interval": b}


def change_flag(new: list[float], old: list[float], tolerance: float) -> tuple[bool | None, str]:
    """Whether ``new`` differs from ``old`` beyond the noise. With 3+ runs on each side the
    bootstrap intervals decide; otherwise the noise is unknown and a relative change beyond
    ``tolerance`` (0.05 = 5%) is flagged, saying so."""
    verdict = speed_verdict(new, old)
    if verdict["within_noise"] is not None:
        return (not verdict["within_noise"],
                "95% intervals overlap" if verdict["within_noise"] else "95% intervals separate")
    a, b = _median(new), _median(old)
    if a is None or b is None or not b:
        return None, "no figure on one side"
    beyond = abs(a / b - 1) > tolerance
    return beyond, f"fewer than {MIN_RUNS_FOR_INTERVAL} runs a side: noise unknown, {tolerance:.0%} threshold"


def _median(values: list) -> float | None:
    nums = [v for v in values if v is not None]
    return statistics.median(nums) if nums else None
