"""Find, read, validate and classify result files.

Usage::

    from unetbench.report.load import load_runs
    runs = load_runs(["results/"], expect=["cuda", "cpu"])   # expected backends: a row even when absent
    complete = [r for r in runs if r.complete]

Every file becomes a ``RunRecord`` whatever its state, so a broken file shows up in the tables
as a row with a reason instead of stopping the comparison. States:

complete         schema-valid, status "completed": the only runs used for medians and speedups
interrupted      schema-valid, status "interrupted" (partial; listed, not aggregated)
failed           schema-valid, status "failed" (listed with its message)
running          schema-valid, status "running" (the run had not finished when compared)
corrupt          not readable as JSON (truncated write, wrong file)
schema-mismatch  JSON, but schema_version is missing or not the one this code reads
invalid          schema_version matches but the content breaks the schema
unreadable       the file exists but could not be read (permissions, I/O error)
missing          named on the command line or expected with --expect, but absent
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..training.results import SCHEMA_VERSION
from .validate import load_schema, validate

log = logging.getLogger(__name__)

PARTIAL_STATES = ("interrupted", "failed", "running")
BROKEN_STATES = ("corrupt", "schema-mismatch", "invalid", "unreadable", "missing")
_STATUS_TO_STATE = {"completed": "complete", "interrupted": "interrupted", "failed": "failed", "running": "running"}


@dataclass
class RunRecord:
    """One result file and what became of it."""

    path: Path
    name: str
    state: str
    problem: str | None = None
    data: dict | None = None
    energy: dict | None = field(default=None)  # {"energy_j", "avg_power_w", "source"} when known
    price_per_hour: float | None = None        # one device-hour, from site.env (energy_cost.py)

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def backend(self) -> str | None:
        return self.data.get("backend") if isinstance(self.data, dict) else None

    @property
    def profile(self) -> str | None:
        return self.data.get("profile") if isinstance(self.data, dict) else None


def run_name_from_path(path: Path) -> str:
    stem = path.stem
    return stem[len("results_"):] if stem.startswith("results_") else stem


def find_result_files(inputs: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Expand folders to their results_*.json; return (existing files, missing paths)."""
    files: list[Path] = []
    missing: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(path.glob("results_*.json")))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    seen: set[Path] = set()
    unique = []
    for f in files:  # the same file named twice (folder and file) counts once
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


def load_run(path: Path) -> RunRecord:
    """Read one file and classify it; never raises for a bad file."""
    name = run_name_from_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return RunRecord(path, name, "unreadable" if isinstance(err, OSError) else "corrupt", f"cannot read: {err}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return RunRecord(path, name, "corrupt", f"not valid JSON ({err.msg} at line {err.lineno})")
    if not isinstance(data, dict):
        return RunRecord(path, name, "schema-mismatch", f"expected a JSON object, found {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        found = "no schema_version" if version is None else f"schema_version {version!r}"
        return RunRecord(path, name, "schema-mismatch", f"{found}; this comparison reads version {SCHEMA_VERSION}")
    errors = validate(data, load_schema())
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return RunRecord(path, name, "invalid", errors[0] + more, data=None)
    state = _STATUS_TO_STATE[data["status"]]
    diverged = _nonfinite_epoch(data) if state == "complete" else None
    if diverged is not None:   # written before the trainer failed such runs (unetbench/training/health.py)
        return RunRecord(path, data.get("run_name") or name, "failed",
                         f"training loss not finite (null) in epoch {diverged}: diverged, left out", data)
    problem = data.get("message") if state != "complete" else None
    if state != "complete" and not problem:
        problem = f"status {data['status']}"
    return RunRecord(path, data.get("run_name") or name, state, problem, data)


def load_runs(inputs: Iterable[str | Path], expect: Iterable[str] = ()) -> list[RunRecord]:
    """Load every result file under ``inputs``; add ``missing`` rows for absent paths and
    for expected backends that have no result file at all."""
    files, missing = find_result_files(inputs)
    runs = [load_run(f) for f in files]
    runs += [RunRecord(p, run_name_from_path(p), "missing", "file not found") for p in missing]
    present = {r.backend for r in runs} | {r.name for r in runs}
    for backend in expect:
        if backend not in present:
            runs.append(RunRecord(Path(f"results_{backend}.json"), backend, "missing",
                                  f"no results for expected backend {backend}"))
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.state] = counts.get(r.state, 0) + 1
    log.info("loaded %d result files: %s", len(runs), ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return runs


def _nonfinite_epoch(data: dict) -> int | None:
    """The first epoch whose training loss was NaN or inf (written as null), or None."""
    for row in data.get("history") or []:
        if isinstance(row, dict) and "train_loss" in row and row["train_loss"] is None:
            return row.get("epoch")
    return None
