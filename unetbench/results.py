"""The results file: one JSON per run, written atomically, described by schema/results.schema.json.

    path = results_path("results", "cuda")        # results/results_cuda.json
    write_results(path, payload)                   # NaN -> null, temp file + rename
    data = load_results(path)                      # checks the schema version

Fields and units are documented in the schema (docs/results.md points there).
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from .atomic import atomic_write_json
from .errors import UserError

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema") / "results.schema.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


def results_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"results_{run_name}.json"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean(value):
    """JSON has no NaN/inf: undefined numbers become null; numpy scalars become Python ones."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _clean(value.item())
    return value


def write_results(path: str | Path, payload: dict) -> None:
    atomic_write_json(path, _clean(payload))


def load_results(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read results file {path}: {err}") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"results file {path} has schema version "
                        f"{data.get('schema_version') if isinstance(data, dict) else None!r}, expected {SCHEMA_VERSION}")
    return data


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def environment(backend) -> dict:
    """Host, device and software identity recorded with every result."""
    return {
        "host": socket.gethostname(),
        **backend.environment(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
        "git_commit": git_commit(),
        "math_mode": backend.math_mode(),
        "compile_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR") if backend.compiled else None,
    }
