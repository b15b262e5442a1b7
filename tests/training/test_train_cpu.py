"""Real training runs on the CPU: a 2-step smoke run, learning, schema, resume after a signal."""

import signal
import subprocess
import sys

import jsonschema
import pytest
from helpers import REPO, SMALL_TRAINING, read_results, run_script

from unetbench.models.unet import UNet, count_parameters
from unetbench.report.validate import load_schema

SCHEMA = load_schema()  # the file with its version and backend/profile names filled in


def test_model_matches_the_seed_parameter_count():
    assert count_parameters(UNet(3, 20)) == 31_044_756


@pytest.mark.slow
def test_two_step_run_writes_valid_results_and_checkpoints(tiny_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
                       "--max-steps-per-epoch", "2", *SMALL_TRAINING])
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path)
    jsonschema.validate(results, SCHEMA)
    assert results["status"] == "completed" and results["backend"] == "cpu" and results["profile"] == "parity"
    t = results["timing"]
    assert t["warmup_steps"] == 1 and t["measured_steps"] == 1 and t["measured_samples"] == 4
    assert t["steady_samples_per_s"] > 0 and t["step_ms"]["p50"] > 0
    assert results["settings"]["epochs"] == 1 and results["dataset"]["counts"]["train"] > 0
    assert len(results["history"]) == 1 and results["test"]["per_class"][0]["name"]
    assert results["model"]["name"] == "UNet" and results["model"]["key"] == "unet"
    assert (tmp_path / "best_unet_cpu.pth").exists() and (tmp_path / "last_cpu.pth").exists()
    assert not list(tmp_path.glob(".*tmp")), "a temporary file was left behind"


@pytest.mark.slow
def test_the_generic_command_is_the_launch_module(tiny_splits, tmp_path):
    proc = run_script(["-m", "unetbench.training.launch", "--backend", "cpu", "--splits", tiny_splits, "--out", tmp_path,
                       "--epochs", "1", "--max-steps-per-epoch", "1", *SMALL_TRAINING])
    assert proc.returncode == 0, proc.stderr
    assert read_results(tmp_path)["status"] == "completed"


@pytest.mark.slow
def test_the_training_loop_does_not_import_its_launcher():
    code = "import sys, unetbench.training.trainer; assert 'unetbench.training.launch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.mark.slow
def test_validation_miou_rises_well_above_chance(learn_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", learn_splits, "--out", tmp_path, "--epochs", "5",
                       "--model-width", "16", "--batch-size", "8", "--lr", "3e-3", "--workers", "0",
                       "--log-every", "100", "--no-peak"])
    assert proc.returncode == 0, proc.stderr
    history = read_results(tmp_path)["history"]
    chance = 1 / read_results(tmp_path)["dataset"]["num_classes"]
    first, last = history[0]["val_miou"], max(h["val_miou"] for h in history)
    assert last > 3 * chance and last > first + 0.1, [h["val_miou"] for h in history]


@pytest.mark.slow
def test_config_file_is_overridden_by_the_command_line(tiny_splits, tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("epochs: 3\nbatch_size: 2\nrun_name: from_yaml\n")
    proc = run_script(["unet_cpu.py", "--config", config, "--splits", tiny_splits, "--out", tmp_path,
                       "--epochs", "1", "--max-steps-per-epoch", "1", "--model-width", "8", "--workers", "0",
                       "--no-peak"])
    assert proc.returncode == 0, proc.stderr
    settings = read_results(tmp_path, "from_yaml")["settings"]
    assert settings["epochs"] == 1 and settings["batch_size"] == 2


@pytest.mark.slow
def test_sigusr1_checkpoints_then_resume_completes_with_continuous_history(tiny_splits, tmp_path):
    args = ["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "3",
            *SMALL_TRAINING, "--log-every", "1", "--auto-resume"]
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


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_a_straight_run(tiny_splits, tmp_path):
    """Same seed: weights, data order and flips continue exactly where they stopped."""
    import torch
    base = ["unet_cpu.py", "--splits", tiny_splits, "--epochs", "2", *SMALL_TRAINING, "--log-every", "1"]
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


@pytest.mark.slow
def test_resume_with_different_settings_is_refused(tiny_splits, tmp_path):
    base = ["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--max-steps-per-epoch", "1", *SMALL_TRAINING]
    assert run_script([*base, "--epochs", "1"]).returncode == 0
    refused = run_script([*base, "--epochs", "2", "--resume"])
    assert refused.returncode == 2 and "epochs" in refused.stderr and "Traceback" not in refused.stderr


def test_progress_state_round_trips_whole_through_a_checkpoint(tmp_path):
    """Every field of RunProgress survives save and load; the next attempt counts one more."""
    from dataclasses import asdict, fields

    import torch

    from unetbench.training.checkpoint import load_checkpoint, save_checkpoint
    from unetbench.training.trainer import RunProgress

    progress = RunProgress(
        epoch=3, step_in_epoch=5, history=[{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}],
        best={"epoch": 2, "val_miou": 0.4, "val_loss": 0.9}, elapsed_s=12.5, train_s=10.0, eval_s=2.5, eval_warmup_s=0.5,
        earlier_wall_s=20.0, time_to_best_s=11.0, memory_phases_gb=[[0.3, 0.1], [0.4, 0.2]], attempts=2,
        started_at="2025-01-01T00:00:00+00:00",
        partial={"loss_sum": torch.tensor(1.25), "confusion": torch.eye(3, dtype=torch.int64), "samples": 8,
                 "epoch_s": 1.5},
        test={"miou": 0.3}, replicas_identical=True,
        quality={"curve": [{"epoch": 1, "step": 5, "elapsed_s": 2.0, "val_miou": 0.2}],
                 "reached": {"elapsed_s": 2.0, "epoch": 1, "step": 5, "val_miou": 0.2}},
        overlays={"file": "overlays_cpu.npz", "indices": [1, 4], "iou": [0.5, 0.6], "split_seed": 3})
    untouched = [f.name for f in fields(RunProgress) if getattr(progress, f.name) == getattr(RunProgress(), f.name)]
    assert not untouched, f"set every field, or a field the checkpoint drops goes unnoticed: {untouched}"

    path = tmp_path / "last_x.pth"
    save_checkpoint(path, {"progress": asdict(progress)})
    restored = RunProgress.continued(load_checkpoint(path)["progress"], path)
    assert restored.attempts == progress.attempts + 1
    for f in fields(RunProgress):
        if f.name not in ("attempts", "partial"):
            assert getattr(restored, f.name) == getattr(progress, f.name), f.name
    assert restored.partial.keys() == progress.partial.keys()
    for key, value in progress.partial.items():
        assert torch.equal(restored.partial[key], value) if torch.is_tensor(value) else restored.partial[key] == value


def test_progress_from_another_version_is_refused(tmp_path):
    from unetbench.core.errors import UserError
    from unetbench.training.trainer import RunProgress
    with pytest.raises(UserError, match="another version of unetbench"):
        RunProgress.continued({"epoch": 2, "step_in_epoch": 0}, tmp_path / "last_cpu.pth")


def test_resume_compares_the_model():
    from unetbench.core.errors import UserError
    from unetbench.training.checkpoint import RESUMABLE_KEYS, RESUME_SETTINGS, check_identity
    assert "model" in RESUME_SETTINGS
    settings = {key: 1 for key in RESUME_SETTINGS}
    saved = {**{key: {} for key in RESUMABLE_KEYS},
             "identity": {"splits_sha256": "a", "settings": {**settings, "model": "other"}}}
    with pytest.raises(UserError, match="model='other'"):
        check_identity(saved, "last_cpu.pth", {"splits_sha256": "a", "settings": {**settings, "model": "unet"}})
