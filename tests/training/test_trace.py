"""--trace-steps: traced steps apart from every throughput figure; a real CPU trace and its top operations."""

import json
import types

import jsonschema
import pytest
from fakes import FakeClock
from helpers import SMALL_TRAINING, read_results, run_script

from unetbench.report.validate import load_schema
from unetbench.training.timing import StepTimer
from unetbench.training.trace import CATEGORY_NAMES, category, top_operations


def test_traced_steps_follow_warm_up_and_count_in_no_throughput_figure():
    clock, marks = FakeClock(), []
    timer = StepTimer(lambda: None, clock.event, warmup_steps=1, clock=clock, trace_steps=2)
    timer.hooks.append(lambda phase, now: marks.append(phase))
    timer.epoch_start()
    for seconds in (5.0, 3.0, 3.0, 0.5, 0.5, 0.5):   # compile, two slow traced steps, three steady
        timer.step_start()
        clock.advance(seconds)
        timer.step_end(4)
    timer.epoch_end()
    s = timer.summary()
    assert s["warmup_steps"] == 1 and s["traced_steps"] == 2 and s["traced_s"] == pytest.approx(6.0)
    assert s["measured_steps"] == 3 and s["measured_s"] == pytest.approx(1.5)
    assert s["steady_samples_per_s"] == pytest.approx(8.0) and s["step_ms"]["max"] == pytest.approx(500.0)
    assert marks == ["warmup", None, "trace", None, "steady", None]


def test_tracing_happens_once_per_run_and_ends_with_its_epoch():
    clock = FakeClock()
    timer = StepTimer(lambda: None, clock.event, warmup_steps=0, clock=clock, trace_steps=3)
    for _ in range(2):
        timer.epoch_start()
        for _ in range(2):
            timer.step_start()
            clock.advance(1.0)
            timer.step_end(4)
        timer.epoch_end()
    s = timer.summary()
    assert s["traced_steps"] == 2 and s["measured_steps"] == 2   # the epoch's end ended the tracing


def test_categories():
    assert category("aten::cudnn_convolution") == "convolution"
    assert category("aten::native_batch_norm_backward") == "normalisation"
    assert category("aten::_foreach_add_") == "optimizer" and category("Optimizer.step#Adam.step") == "optimizer"
    assert category("aten::copy_") == "copies" and category("Memcpy HtoD (Pageable -> Device)") == "copies"
    assert category("nccl:all_reduce") == "communication"
    assert category("aten::threshold_backward") == "elementwise" and category("aten::add_") == "elementwise"
    assert category("aten::max_pool2d_with_indices") == "other"


def test_top_operations_rank_by_device_time_and_skip_kernels():
    def event(key, cpu_us, device_us, device_type="DeviceType.CPU"):
        return types.SimpleNamespace(key=key, count=2, self_cpu_time_total=cpu_us, self_device_time_total=device_us,
                                     device_type=device_type)
    summary = top_operations([event("aten::add_", 900.0, 100.0), event("aten::cudnn_convolution", 50.0, 300.0),
                              event("sm90_xmma_fprop_kernel", 0.0, 300.0, "DeviceType.CUDA"),
                              event("aten::empty", 10.0, 0.0)], limit=15)
    assert summary["time_basis"] == "device" and summary["total_ms"] == pytest.approx(0.4)
    assert [r["name"] for r in summary["top_operations"]] == ["aten::cudnn_convolution", "aten::add_"]
    assert summary["category_share"]["convolution"] == pytest.approx(0.75)
    assert set(summary["category_share"]) == set(CATEGORY_NAMES)


@pytest.mark.slow
def test_a_cpu_run_with_trace_steps_writes_a_trace_and_top_operations(tiny_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
                       "--max-steps-per-epoch", "6", *SMALL_TRAINING, "--trace-steps", "2"])
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path)
    jsonschema.validate(results, load_schema())
    t = results["timing"]
    # 6 steps: 1 warm-up, 2 traced, 3 measured; throughput from the 3 untraced steady steps only
    assert (t["warmup_steps"], t["traced_steps"], t["measured_steps"]) == (1, 2, 3)
    assert t["measured_samples"] == 12 and len(t["step_samples_ms"]) == 3
    trace = results["trace"]
    events = json.loads((tmp_path / "trace_cpu.json").read_text())["traceEvents"]
    assert trace["file"] == str(tmp_path / "trace_cpu.json")
    assert any(e.get("cat") == "cpu_op" and e.get("name", "").startswith("aten::conv") for e in events)
    assert trace["time_basis"] == "cpu" and 0 < len(trace["top_operations"]) <= 15
    assert trace["category_share"]["convolution"] > 0
    assert sum(trace["category_share"].values()) == pytest.approx(1.0)
    energy = results["energy"]
    assert energy["source"] or energy["absent"]   # RAPL where readable, else why not
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.slow
def test_two_ranks_trace_each_and_record_every_ranks_energy(tiny_splits, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from helpers import REPO
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([torchrun, "--nproc_per_node=2", "unet_cpu.py", "--epochs", "2", "--max-steps-per-epoch",
                           "4", *SMALL_TRAINING, "--trace-steps", "1", "--splits", str(tiny_splits),
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(tmp_path)
    assert (tmp_path / "trace_cpu.json").is_file() and (tmp_path / "trace_cpu_rank1.json").is_file()
    t = results["timing"]
    # 2 epochs of 3 steps (14 samples per rank): 1 warm-up, 1 traced, 4 measured
    assert (t["traced_steps"], t["measured_steps"]) == (1, 4) and t["measured_samples"] == 4 * 8
    per_rank = results["energy"]["per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1]   # rank 1's totals reached rank 0's results
    assert "local rank 0" in per_rank[1]["absent"]    # the node's RAPL is metered once
