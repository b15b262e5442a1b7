"""Real training runs on the CPU: a 2-step smoke run, learning, schema, resume after a signal."""

import json
import signal
import subprocess
import sys

import jsonschema
import pytest

from training_fixtures import FAST, REPO, read_results, run_script
from unetbench.model import UNet, count_parameters
from unetbench.results import SCHEMA_PATH

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def test_model_matches_the_seed_parameter_count():
    assert count_parameters(UNet(3, 20)) == 31_044_756


def test_two_step_run_writes_valid_results_and_checkpoints(tiny_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
                       "--max-steps-per-epoch", "2", *FAST])
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path)
    jsonschema.validate(results, SCHEMA)
    assert results["status"] == "completed" and results["backend"] == "cpu" and results["profile"] == "parity"
    t = results["timing"]
    assert t["warmup_steps"] == 1 and t["measured_steps"] == 1 and t["measured_samples"] == 4
    assert t["steady_samples_per_s"] > 0 and t["step_ms"]["p50"] > 0
    assert results["settings"]["epochs"] == 1 and results["dataset"]["counts"]["train"] > 0
    assert len(results["history"]) == 1 and results["test"]["per_class"][0]["name"]
    assert (tmp_path / "best_unet_cpu.pth").exists() and (tmp_path / "last_cpu.pth").exists()
    assert not list(tmp_path.glob(".*tmp")), "a temporary file was left behind"


def test_validation_miou_rises_well_above_chance(learn_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", learn_splits, "--out", tmp_path, "--epochs", "5",
                       "--model-width", "16", "--batch-size", "8", "--lr", "3e-3", "--workers", "0",
                       "--log-every", "100"])
    assert proc.returncode == 0, proc.stderr
    history = read_results(tmp_path)["history"]
    chance = 1 / read_results(tmp_path)["dataset"]["num_classes"]
    first, last = history[0]["val_miou"], max(h["val_miou"] for h in history)
    assert last > 3 * chance and last > first + 0.1, [h["val_miou"] for h in history]


def test_config_file_is_overridden_by_the_command_line(tiny_splits, tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("epochs: 3\nbatch_size: 2\nrun_name: from_yaml\n")
    proc = run_script(["unet_cpu.py", "--config", config, "--splits", tiny_splits, "--out", tmp_path,
                       "--epochs", "1", "--max-steps-per-epoch", "1", "--model-width", "8", "--workers", "0"])
    assert proc.returncode == 0, proc.stderr
    settings = read_results(tmp_path, "from_yaml")["settings"]
    assert settings["epochs"] == 1 and settings["batch_size"] == 2


def test_sigusr1_checkpoints_then_resume_completes_with_continuous_history(tiny_splits, tmp_path):
    args = ["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "3",
            *FAST, "--log-every", "1", "--auto-resume"]
    _interrupt_at(args, "epoch 2/3: step 2/")  # in the middle of the second epoch
    interrupted = read_results(tmp_path)
    assert interrupted["status"] == "interrupted" and "auto-resume" in interrupted["message"]
    assert len(interrupted["history"]) == 1

    resumed = run_script(args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "epoch 2, step" in resumed.stdout
    results = read_results(tmp_path)
    assert results["status"] == "completed"
    assert [h["epoch"] for h in results["history"]] == [1, 2, 3]
    assert results["timing"]["attempts"] == 2
    # every training step ran exactly once: 3 epochs of train_count // batch steps
    steps_per_epoch = results["dataset"]["counts"]["train"] // 4
    t = results["timing"]
    assert t["warmup_steps"] + t["measured_steps"] == 3 * steps_per_epoch


def _interrupt_at(args, marker):
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith(marker):
            proc.send_signal(signal.SIGUSR1)
            break
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 3, output


def test_interrupted_and_resumed_run_equals_a_straight_run(tiny_splits, tmp_path):
    """Same seed: weights, data order and flips continue exactly where they stopped."""
    import torch
    base = ["unet_cpu.py", "--splits", tiny_splits, "--epochs", "2", *FAST, "--log-every", "1"]
    straight = run_script([*base, "--out", tmp_path / "a"])
    assert straight.returncode == 0, straight.stderr
    _interrupt_at([*base, "--out", tmp_path / "b"], "epoch 2/2: step 1/")
    resumed = run_script([*base, "--out", tmp_path / "b", "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "a" / "last_cpu.pth", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last_cpu.pth", weights_only=True)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)
    ha, hb = read_results(tmp_path / "a")["history"], read_results(tmp_path / "b")["history"]
    assert [h["train_loss"] for h in ha] == pytest.approx([h["train_loss"] for h in hb])


def test_resume_with_different_settings_is_refused(tiny_splits, tmp_path):
    base = ["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--max-steps-per-epoch", "1", *FAST]
    assert run_script([*base, "--epochs", "1"]).returncode == 0
    refused = run_script([*base, "--epochs", "2", "--resume"])
    assert refused.returncode == 2 and "epochs" in refused.stderr and "Traceback" not in refused.stderr
