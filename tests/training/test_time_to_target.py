"""Time to quality and prediction overlays from real CPU trainings; the timer's pause; bad input."""

import jsonschema
import numpy as np
import pytest
from fakes import FakeClock
from helpers import SMALL_TRAINING, read_results, run_script
from test_timing import _run_epoch

from unetbench.core.overlay_file import choose_indices, load_overlays
from unetbench.report.validate import load_schema
from unetbench.training.time_to_target import TimeToTarget, new_state
from unetbench.training.timing import StepTimer

SCHEMA = load_schema()


def test_an_evaluation_between_steps_is_in_no_training_window():
    dev = FakeClock()
    timer = StepTimer(dev.sync, dev.event, warmup_steps=1, clock=dev)
    timer.epoch_start()
    for seconds in (5.0, 1.0, 1.0):
        timer.step_start()
        dev.now += seconds
        timer.step_end(4)
    with timer.paused() as so_far:
        assert so_far == pytest.approx(7.0)
        dev.now += 30.0                      # the evaluation
    for _ in range(2):
        timer.step_start()
        dev.now += 1.0
        timer.step_end(4)
    assert timer.epoch_end() == pytest.approx(9.0)   # training seconds only
    s = timer.summary()
    assert s["measured_steps"] == 4 and s["measured_s"] == pytest.approx(4.0)
    assert s["step_ms"]["max"] == pytest.approx(1000.0)   # no step swallowed the evaluation
    assert _run_epoch(timer, dev, [1.0, 1.0]) == pytest.approx(2.0)


def test_validations_are_due_every_n_steps_but_not_at_an_epochs_end_and_the_first_reaching_counts():
    said = []
    quality = TimeToTarget(target_miou=0.5, eval_every=4, stop_at_target=True, say=said.append)
    assert [step for step in range(1, 13) if quality.due(step, total_steps=12)] == [4, 8]   # 12: the epoch's own
    assert not TimeToTarget(0.5, None, False).due(4, 12)
    state = new_state()
    assert quality.observe(state, 0.3, 10.0, epoch=1, step=4) is False
    assert quality.observe(state, 0.6, 20.0, epoch=1, step=8) is True
    assert quality.observe(state, 0.7, 30.0, epoch=1, step=12) is True   # reached stays reached
    assert state["reached"] == {"elapsed_s": 20.0, "epoch": 1, "step": 8, "val_miou": 0.6}
    assert [p["elapsed_s"] for p in state["curve"]] == [10.0, 20.0, 30.0] and len(said) == 1
    assert TimeToTarget(0.5, 4, stop_at_target=False).observe(new_state(), 0.9, 1.0, 1, 4) is False


def test_overlay_indices_come_from_the_split_seed_alone():
    assert choose_indices(30, 6, seed=3) == choose_indices(30, 6, seed=3)
    assert choose_indices(30, 6, seed=3) != choose_indices(30, 6, seed=4)
    assert choose_indices(4, 6, seed=3) == [0, 1, 2, 3]


def _train(splits, out, *flags):
    proc = run_script(["unet_cpu.py", "--splits", splits, "--out", out, *SMALL_TRAINING, "--lr", "3e-3", *flags])
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_stop_at_target_records_the_time_and_stops_there(learn_splits, tmp_path):
    proc = _train(learn_splits, tmp_path, "--epochs", "6", "--target-miou", "0.2", "--eval-every", "4",
                  "--stop-at-target")
    results = read_results(tmp_path)
    jsonschema.validate(results, SCHEMA)
    q = results["quality"]
    assert q["reached"] and q["target_miou"] == 0.2 and q["stop_at_target"] and "reached after" in proc.stdout
    curve = q["curve"]
    first = next(i for i, p in enumerate(curve) if p["val_miou"] >= 0.2)
    assert q["time_to_target_s"] == curve[first]["elapsed_s"]
    # Nothing trained after the target: at most the stopped epoch's own closing validation follows.
    assert first == len(curve) - 1 or (first == len(curve) - 2 and curve[-1]["epoch"] == curve[first]["epoch"]
                                       and curve[-1]["step"] == curve[first]["step"])
    assert all(p["val_miou"] < 0.2 for p in curve[:first])
    # Validations every 4 steps and at every epoch end; elapsed time grows with each.
    assert all(p["step"] % 4 == 0 or p["step"] == 21 for p in curve)
    assert all(b["elapsed_s"] > a["elapsed_s"] for a, b in zip(curve, curve[1:]))
    assert len(results["history"]) < 6, "training went on past the target"
    assert results["history"][-1]["elapsed_s"] >= q["time_to_target_s"]
    assert results["test"]["miou"] is not None
    # Overlays: the default 6 test images, from the best checkpoint, beside the results.
    entry = results["overlays"]
    arrays = load_overlays(tmp_path / entry["file"])
    assert arrays["images"].shape[0] == 6 == len(entry["iou"]) and arrays["predictions"].shape == arrays["labels"].shape
    assert list(arrays["indices"]) == entry["indices"]
    assert all(0 <= v <= 1 for v in entry["iou"])


@pytest.mark.slow
def test_a_target_never_reached_reads_so_and_overlays_match_across_profiles_and_seeds(learn_splits, tmp_path):
    for name, flags in (("a", ["--profile", "parity", "--seed", "1"]), ("b", ["--profile", "fast", "--seed", "2"])):
        _train(learn_splits, tmp_path, "--run-name", name, "--epochs", "1", "--max-steps-per-epoch", "4",
               "--target-miou", "0.99", "--eval-every", "2", "--overlay-images", "3", *flags)
    a, b = read_results(tmp_path, "a"), read_results(tmp_path, "b")
    jsonschema.validate(a, SCHEMA)
    assert a["quality"]["reached"] is False and a["quality"]["time_to_target_s"] is None
    assert [p["step"] for p in a["quality"]["curve"]] == [2, 4]   # every 2 steps; step 4 is the epoch's end
    oa, ob = load_overlays(tmp_path / "overlays_a.npz"), load_overlays(tmp_path / "overlays_b.npz")
    assert a["overlays"]["indices"] == b["overlays"]["indices"] and len(a["overlays"]["indices"]) == 3
    assert np.array_equal(oa["images"], ob["images"]) and np.array_equal(oa["labels"], ob["labels"])


@pytest.mark.slow
def test_no_overlays_when_asked_for_none(tiny_splits, tmp_path):
    _train(tiny_splits, tmp_path, "--epochs", "1", "--max-steps-per-epoch", "2", "--overlay-images", "0")
    assert read_results(tmp_path)["overlays"] is None and not list(tmp_path.glob("overlays_*"))


@pytest.mark.slow
@pytest.mark.parametrize("flags,needle", [
    (["--target-miou", "1.5"], "target-miou is a mIoU, between 0 and 1"),
    (["--target-miou", "0"], "target-miou is a mIoU, between 0 and 1"),
    (["--eval-every", "0"], "eval-every must be positive"),
    (["--overlay-images", "-1"], "overlay-images must not be negative"),
    (["--stop-at-target"], "--stop-at-target needs --target-miou"),
])
def test_bad_quality_flags_are_clear_errors(tiny_splits, tmp_path, flags, needle):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, *flags])
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not list(tmp_path.iterdir()), "a refused run wrote something"
