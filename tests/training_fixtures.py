"""Shared helpers for training tests: subprocess runs and results (fixtures: conftest.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A narrow UNet keeps CPU tests fast; the full width (64) is the seed's model, checked by
# test_model_matches_the_seed_parameter_count.
FAST = ["--model-width", "8", "--batch-size", "4", "--workers", "0", "--warmup-steps", "1", "--log-every", "2"]


def run_script(args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env, **kwargs)


def read_results(folder: Path, run: str = "cpu") -> dict:
    return json.loads((Path(folder) / f"results_{run}.json").read_text())
