"""A diverging training (NaN/inf loss) fails with the step and the value, and stays out of the
comparison; the check reads the device once per epoch, not per step.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/training/test_training_health.py
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import SMALL_TRAINING, read_results, run_script
from results_fixtures import make_result, write_result

from unetbench.report.load import load_run
from unetbench.training.distributed import DistContext
from unetbench.training.health import LossHealth, NonFiniteLoss


def _epoch(health: LossHealth, losses, epoch=1, start=0):
    health.epoch_start(epoch, start)
    for value in losses:
        health.observe(torch.tensor(value))


def test_the_first_non_finite_step_is_named_with_its_value():
    health = LossHealth(torch.device("cpu"))
    _epoch(health, [2.0, 1.5], epoch=1)
    health.check(DistContext.single())              # finite: nothing happens
    _epoch(health, [1.4, math.inf, math.nan], epoch=2, start=3)   # resumed at step 3
    with pytest.raises(NonFiniteLoss) as err:
        health.check(DistContext.single())
    assert "2 step(s), first at epoch 2 step 5 (loss inf)" in str(err.value)
    assert "--lr" in str(err.value)


def test_patience_tolerates_that_many_bad_steps():
    health = LossHealth(torch.device("cpu"), patience=1)
    _epoch(health, [1.0, math.nan, 1.0])
    health.check(DistContext.single())
    _epoch(health, [math.nan], epoch=2)
    with pytest.raises(NonFiniteLoss, match="first at epoch 1 step 2"):
        health.check(DistContext.single())


@pytest.mark.slow
def test_a_diverging_run_fails_and_the_comparison_leaves_it_out(tiny_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "3",
                       "--max-steps-per-epoch", "3", *SMALL_TRAINING, "--lr", "1e30"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "training diverged: the loss was not finite" in proc.stderr and "first at epoch 1 step" in proc.stderr
    results = read_results(tmp_path)
    assert results["status"] == "failed" and "training diverged" in results["message"]
    assert results["history"] == []          # stopped in the first epoch, not after all three
    compare = run_script(["compare_results.py", tmp_path, "--quiet"])
    assert compare.returncode == 2 and "no complete run" in compare.stderr, compare.stderr


def test_an_older_completed_run_with_null_losses_counts_as_failed(tmp_path):
    result = make_result("cpu")
    result["history"][0]["train_loss"] = None    # NaN written as null
    record = load_run(write_result(tmp_path, result))
    assert record.state == "failed" and "not finite" in record.problem
    assert load_run(write_result(tmp_path, make_result("cuda"))).state == "complete"
