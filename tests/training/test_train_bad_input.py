"""Bad input to the training scripts: one clear line, exit code 2, no traceback, nothing lost."""

import json

import numpy as np
import pytest
from helpers import SMALL_TRAINING, run_script


def _fails_cleanly(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flag,value,needle", [
    ("--batch-size", "0", "batch-size must be positive"),
    ("--epochs", "-1", "epochs must be positive"),
    ("--lr", "abc", "expected float"),
    ("--workers", "-2", "workers must not be negative"),
    ("--profile", "turbo", "invalid choice"),
])
def test_bad_flags_are_argparse_errors(flag, value, needle):
    _fails_cleanly(run_script(["unet_cpu.py", flag, value]), needle)


@pytest.mark.slow
def test_missing_split_file_names_the_file_and_the_fix(tmp_path):
    _fails_cleanly(run_script(["unet_cpu.py", "--splits", tmp_path / "nope.json", "--out", tmp_path]),
                   "nope.json not found", "prepare_dataset.py")


@pytest.mark.slow
def test_no_cuda_device_is_exit_2_with_a_clear_message(tiny_splits, tmp_path):
    _fails_cleanly(run_script(["unet_cuda.py", "--splits", tiny_splits, "--out", tmp_path],
                              env={"CUDA_VISIBLE_DEVICES": ""}), "no CUDA device visible on this node")


@pytest.mark.slow
def test_missing_gaudi_software_is_exit_2(tiny_splits, tmp_path):
    _fails_cleanly(run_script(["unet_gaudi_eager.py", "--splits", tiny_splits, "--out", tmp_path]),
                   "Intel Gaudi software not found")


@pytest.mark.slow
def test_wrong_array_shape_is_reported(tiny_splits, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    meta = json.loads(tiny_splits.read_text())
    for f in tiny_splits.parent.glob("*.npy"):
        (data / f.name).write_bytes(f.read_bytes())
    np.save(data / "val_labels.npy", np.zeros((3, 5, 5), np.uint8))
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    _fails_cleanly(run_script(["unet_cpu.py", "--splits", data / "dataset_splits.json", "--out", tmp_path]),
                   "val_labels.npy", "prepare_dataset.py --force")


@pytest.mark.slow
def test_dataset_with_crops_the_model_cannot_take_is_refused_before_training(tiny_splits, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    meta = json.loads(tiny_splits.read_text())
    meta["crop"]["height"] = 30  # 32x48 cut to 30x48: the UNet pools four times, so needs multiples of 16
    for split in meta["splits"].values():
        for kind in ("images", "labels"):
            array = np.load(tiny_splits.parent / split[kind]["file"])[:, :30]
            np.save(data / split[kind]["file"], array)
            split[kind]["shape"] = list(array.shape)
            if kind == "labels":   # a consistent split file: its class counts are of the cut labels
                split["class_pixel_counts"] = np.bincount(array.ravel(), minlength=meta["num_classes"]).tolist()
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    proc = run_script(["unet_cpu.py", "--splits", data / "dataset_splits.json", "--out", tmp_path / "out", *SMALL_TRAINING])
    _fails_cleanly(proc, "dataset_splits.json has crops of 30x48", "multiples of 16", "height of 16 or 32")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists(), "nothing may be written for a run that never started"


@pytest.mark.slow
def test_corrupt_split_file_and_wrong_version(tmp_path):
    bad = tmp_path / "dataset_splits.json"
    bad.write_text("{not json")
    _fails_cleanly(run_script(["unet_cpu.py", "--splits", bad, "--out", tmp_path]), "not valid JSON")
    bad.write_text(json.dumps({"format_version": 99}))
    _fails_cleanly(run_script(["unet_cpu.py", "--splits", bad, "--out", tmp_path]), "format version 99")


@pytest.mark.slow
def test_bad_config_files(tiny_splits, tmp_path):
    unknown = tmp_path / "a.yaml"
    unknown.write_text("batchsize: 4\n")
    _fails_cleanly(run_script(["unet_cpu.py", "--config", unknown]), "unknown setting 'batchsize'")
    negative = tmp_path / "b.json"
    negative.write_text(json.dumps({"batch_size": -4}))
    _fails_cleanly(run_script(["unet_cpu.py", "--config", negative]), "batch-size must be positive")
    broken = tmp_path / "c.yaml"
    broken.write_text("epochs: [1,\n")
    _fails_cleanly(run_script(["unet_cpu.py", "--config", broken]), "not valid YAML")
    _fails_cleanly(run_script(["unet_cpu.py", "--config", tmp_path / "missing.yaml"]), "cannot read config file")


@pytest.mark.slow
def test_resume_without_checkpoint(tiny_splits, tmp_path):
    _fails_cleanly(run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--resume"]),
                   "no checkpoint", "--auto-resume")


@pytest.mark.slow
def test_corrupt_checkpoint_is_reported_and_previous_results_stay(tiny_splits, tmp_path):
    base = ["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
            "--max-steps-per-epoch", "1", *SMALL_TRAINING]
    assert run_script(base).returncode == 0
    good = (tmp_path / "results_cpu.json").read_text()
    (tmp_path / "last_cpu.pth").write_bytes(b"truncated")
    _fails_cleanly(run_script([*base, "--resume"]), "last_cpu.pth is unreadable", "delete it")
    assert (tmp_path / "results_cpu.json").read_text() == good


@pytest.mark.slow
def test_unwritable_results_folder(tiny_splits, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", blocker / "results",
                       "--epochs", "1", "--max-steps-per-epoch", "1", *SMALL_TRAINING])
    _fails_cleanly(proc, "cannot write")


@pytest.mark.slow
def test_batch_larger_than_the_train_split(tiny_splits, tmp_path):
    _fails_cleanly(run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--batch-size", "1000"]),
                   "fewer than one batch")


class _StubTrainer:
    """What the launcher's failure handling sees of a Trainer."""

    def __init__(self, started: bool):
        self.started = started
        self.written = []

    def run(self) -> int:
        raise RuntimeError("device lost")

    def write(self, status, message=None) -> None:
        self.written.append((status, message))


@pytest.mark.parametrize("started,written", [(True, [("failed", "RuntimeError: device lost")]), (False, [])])
def test_a_failure_is_recorded_only_once_the_run_started(started, written):
    from unetbench.training.launch import run_recording_failure
    trainer = _StubTrainer(started)
    with pytest.raises(RuntimeError, match="device lost"):
        run_recording_failure(trainer)
    assert trainer.written == written


@pytest.fixture(scope="module")
def finished_run(tiny_splits, tmp_path_factory):
    """One short in-process run: its last_cpu.pth and best_unet_cpu.pth to damage."""
    from helpers import SMALL_SETTINGS

    from unetbench.core.settings import Settings
    from unetbench.devices.base import make_backend
    from unetbench.training.trainer import Trainer
    out = tmp_path_factory.mktemp("finished")
    settings = Settings(splits=str(tiny_splits), out=str(out), epochs=1, max_steps_per_epoch=1, **SMALL_SETTINGS)
    trainer = Trainer(settings, make_backend("cpu"))
    assert trainer.run() == 0
    trainer.release()
    return settings, out


@pytest.mark.parametrize("damage, needle", [
    ("best", "is a best-weights file (best_unet_<run>.pth: for --weights), not a resumable last_<run>.pth"),
    ("no optimizer", "lacks its optimizer"),
    ("a tensor missing", "its model weights does not fit this run"),
    ("a tensor reshaped", "its model weights does not fit this run"),
])
def test_a_damaged_or_foreign_checkpoint_is_refused_in_one_line(finished_run, tmp_path, damage, needle):
    import torch

    from unetbench.core.errors import UserError
    from unetbench.devices.base import make_backend
    from unetbench.training.trainer import Trainer
    settings, out = finished_run
    path = tmp_path / "last_cpu.pth"
    state = torch.load(out / ("best_unet_cpu.pth" if damage == "best" else "last_cpu.pth"), weights_only=True)
    if damage == "no optimizer":
        del state["optimizer"]
    elif damage == "a tensor missing":
        state["model"].pop(next(iter(state["model"])))
    elif damage == "a tensor reshaped":
        key = next(iter(state["model"]))
        state["model"][key] = state["model"][key].flatten()[:3]
    torch.save(state, path)
    trainer = Trainer(settings, make_backend("cpu"))
    with pytest.raises(UserError, match="checkpoint|last_cpu.pth") as err:
        trainer.resume(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_warm_up_that_takes_every_step_is_warned_about_before_the_run(tiny_splits, tmp_path, capsys):
    from helpers import SMALL_SETTINGS

    from unetbench.core.settings import Settings
    from unetbench.devices.base import make_backend
    from unetbench.training.trainer import Trainer
    settings = Settings(splits=str(tiny_splits), out=str(tmp_path), epochs=1, max_steps_per_epoch=3,
                        **{**SMALL_SETTINGS, "warmup_steps": 2}, trace_steps=1)
    Trainer(settings, make_backend("cpu")).release()
    out = capsys.readouterr().out
    assert "warning: --warmup-steps 2 and --trace-steps 1 take all 3 training steps" in out
    assert "no step is measured" in out
    Trainer(Settings(**{**settings.__dict__, "max_steps_per_epoch": 4}), make_backend("cpu")).release()
    assert "warning" not in capsys.readouterr().out
