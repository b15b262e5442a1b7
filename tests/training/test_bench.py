"""The throughput benchmark runs on the CPU and prints sane figures (not how fast: that is the
benchmark's job on real hardware)."""

import json

import pytest
from helpers import run_script

pytestmark = pytest.mark.slow  # both start the benchmark process (python -m unetbench.bench)


def test_bench_runs_and_reports_consistent_figures(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--profile", "parity", "--crop", "32x48",
                       "--batch-size", "2", "--steps", "3", "--warmup", "1", "--model-width", "8",
                       "--workers", "0", "--matmul-size", "128", "--matmul-warmup-s", "0.2", "--json", out])
    assert proc.returncode == 0, proc.stderr
    for label in ("samples/s", "TFLOP/s", "end-to-end / compute-only ratio", "utilisation vs matmul peak",
                  "data-wait share", "metrics share", "warm-up s", "peak memory GB"):
        assert label in proc.stdout
    r = json.loads(out.read_text())
    assert r["compute_only"]["samples_per_s"] > 0 and r["end_to_end"]["samples_per_s"] > 0
    assert r["end_to_end"]["measured_steps"] == 3
    assert r["matmul_peak_tflops"] > 0 and 0 < r["end_to_end_over_compute"]
    assert 0 <= r["end_to_end"]["data_wait_fraction"] < 1 and 0 < r["metrics_share"] < 1
    expected_flops = r["gflop_per_sample"] * 1e9 * r["end_to_end"]["samples_per_s"] / 1e12
    assert abs(r["tflops_end_to_end"] - expected_flops) < 1e-9


def test_each_part_warms_up_cold_and_the_output_says_what_it_measured(tmp_path):
    """Run in one process, the end-to-end part reused the compute-only part's compiled graph
    (7.2 s of warm-up became 0.1 s). Each part now runs in a process of its own, with an empty
    compile cache of its own, and the output says so; data wait is named as host time."""
    out = tmp_path / "bench.json"
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--profile", "parity", "--crop", "32x48",
                       "--batch-size", "2", "--steps", "2", "--warmup", "1", "--model-width", "8",
                       "--workers", "0", "--matmul-size", "64", "--matmul-warmup-s", "0", "--json", out])
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    compute, e2e = r["compute_only"]["warmup_state"], r["end_to_end"]["warmup_state"]
    assert compute["process"] != e2e["process"]
    assert compute["compile_cache"] != e2e["compile_cache"]
    assert compute["compile_cache_was_empty"] and e2e["compile_cache_was_empty"]
    assert "warm-up s (cold)" in proc.stdout and "empty compile cache" in proc.stdout
    assert "host blocked on the loader, not device idle time" in proc.stdout
    assert r["end_to_end"]["eval_warmup_s"] == 0.0  # the CPU compiles nothing per shape


def test_bench_rejects_a_crop_the_unet_cannot_take():
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--crop", "30x48"])
    assert proc.returncode == 2 and "multiples of 16" in proc.stderr
