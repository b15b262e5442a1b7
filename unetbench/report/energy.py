"""Energy of a training run: from the results file, else from the device monitor's CSV.

Usage::

    from unetbench.report.energy import run_energy
    energy = run_energy(record)   # {"energy_j", "avg_power_w", "source", "coverage"} or None

The monitor writes ``monitor_<run>.csv`` beside ``results_<run>.json`` with the header
``timestamp,device_index,utilization_pct,memory_used_mib,power_w,temperature_c``, one row per
device per sample (about 1 s apart). Energy is the trapezoid integral of power over the
training window (results ``started_at`` .. ``finished_at``), per device, summed over the run's
own devices: the results' ``energy.monitor_devices`` where recorded (a monitor of an older
release, or one that could not tell the job's GPUs, wrote every GPU of the node), else every
device in the file.
At the window edges power is linearly interpolated, so a sample just outside the window still
counts for the part of the interval inside it. ``coverage`` is the share of the window the
samples span (the smallest over devices); below 0.9 the figure is flagged as partial.
"""

from __future__ import annotations

import csv
import logging
from datetime import datetime, timezone
from pathlib import Path

from .load import RunRecord, run_name_from_path

log = logging.getLogger(__name__)
MIN_COVERAGE = 0.9


def parse_iso(text: str) -> float:
    """ISO-8601 (with Z or an offset; naive means UTC) to unix seconds."""
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def read_monitor(path: Path) -> dict[int, list[tuple[float, float]]]:
    """Power samples per device index, sorted by time; rows that do not parse are skipped."""
    series: dict[int, list[tuple[float, float]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                t, dev, watts = float(row["timestamp"]), int(row["device_index"]), float(row["power_w"])
            except (KeyError, TypeError, ValueError):
                continue  # a partly written last line, or a device that reported no power
            series.setdefault(dev, []).append((t, watts))
    for samples in series.values():
        samples.sort()
    return series


def _interp(a: tuple[float, float], b: tuple[float, float], t: float) -> float:
    (t0, p0), (t1, p1) = a, b
    return p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)


def integrate(samples: list[tuple[float, float]], start: float, end: float) -> tuple[float, float]:
    """Trapezoid energy (J) of one device inside [start, end]; returns (joules, seconds covered)."""
    joules = covered = 0.0
    for a, b in zip(samples, samples[1:]):
        lo, hi = max(a[0], start), min(b[0], end)
        if hi <= lo:
            continue
        p_lo, p_hi = _interp(a, b, lo), _interp(a, b, hi)
        joules += 0.5 * (p_lo + p_hi) * (hi - lo)
        covered += hi - lo
    return joules, covered


def monitor_energy(path: Path, start: float, end: float, devices: list[int] | None = None) -> dict | None:
    """``devices``: the run's own device indices (None: every device in the file)."""
    try:
        series = read_monitor(path)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        log.warning("cannot read monitor file %s: %s", path, err)
        return None
    if devices is not None:
        others = sorted(set(series) - set(devices))
        if others:
            log.info("monitor file %s: rows of devices %s are not this run's %s; left out", path, others, devices)
        series = {dev: samples for dev, samples in series.items() if dev in devices}
    if not series or end <= start:
        return None
    total_j, coverage = 0.0, 1.0
    for samples in series.values():
        joules, covered = integrate(samples, start, end)
        total_j += joules
        coverage = min(coverage, covered / (end - start))
    if coverage <= 0:
        log.warning("monitor file %s has no samples inside the training window", path)
        return None
    if coverage < MIN_COVERAGE:
        log.warning("monitor file %s covers only %.0f%% of the training window", path, 100 * coverage)
    return {"energy_j": total_j, "avg_power_w": total_j / (end - start), "source": f"monitor:{path.name}",
            "coverage": round(coverage, 3), "devices": len(series)}


def run_energy(record: RunRecord) -> dict | None:
    """Energy for one run: the results' own ``energy`` object wins; else the monitor CSV."""
    data = record.data
    if not data:
        return None
    own = data.get("energy")
    if isinstance(own, dict) and own.get("energy_j") is not None:
        return {"energy_j": own["energy_j"], "avg_power_w": own.get("avg_power_w"),
                "source": own.get("source") or "results", "coverage": None, "devices": None}
    names = {run_name_from_path(record.path), data.get("run_name")}
    for name in filter(None, names):
        path = record.path.parent / f"monitor_{name}.csv"
        if path.is_file():
            if not data.get("finished_at"):
                log.warning("%s has no finished_at; cannot bound the energy window", record.path)
                return None
            try:
                start, end = parse_iso(data["started_at"]), parse_iso(data["finished_at"])
            except ValueError as err:
                log.warning("%s: bad timestamp (%s); energy skipped", record.path, err)
                return None
            devices = own.get("monitor_devices") if isinstance(own, dict) else None
            return monitor_energy(path, start, end, devices if isinstance(devices, list) else None)
    return None
