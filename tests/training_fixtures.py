"""Shared helpers for training tests: tiny synthetic datasets and subprocess runs.

Import the fixtures into a test module with ``from training_fixtures import *``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unetbench.prepare.api import prepare_synthetic

REPO = Path(__file__).resolve().parent.parent
# A narrow UNet keeps CPU tests fast; the full width (64) is the seed's model, checked by
# test_model_matches_the_seed_parameter_count.
FAST = ["--model-width", "8", "--batch-size", "4", "--workers", "0", "--warmup-steps", "1", "--log-every", "2"]


@pytest.fixture(scope="session")
def tiny_splits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_data")
    return Path(prepare_synthetic(out, num_images=40, crop=(32, 48), seed=7).splits_file)


@pytest.fixture(scope="session")
def learn_splits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("learn_data")
    return Path(prepare_synthetic(out, num_images=120, crop=(64, 96), seed=3).splits_file)


def run_script(args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env, **kwargs)


def read_results(folder: Path, run: str = "cpu") -> dict:
    return json.loads((Path(folder) / f"results_{run}.json").read_text())
