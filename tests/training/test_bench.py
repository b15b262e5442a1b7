"""The throughput benchmark runs on the CPU and prints sane figures (not how fast: that is the
benchmark's job on real hardware)."""

import json

import pytest
from helpers import run_script


@pytest.mark.slow  # starts the benchmark process (python -m unetbench.bench), which starts one per part
def test_bench_runs_and_reports_consistent_figures(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--profile", "parity", "--crop", "32x48",
                       "--batch-size", "2", "--steps", "3", "--warmup", "1", "--model-width", "8",
                       "--workers", "0", "--json", out])
    assert proc.returncode == 0, proc.stderr
    for label in ("samples/s", "TFLOP/s", "end-to-end / compute-only ratio", "utilisation vs matmul peak",
                  "data-wait share", "metrics share", "warm-up s", "peak memory GB"):
        assert label in proc.stdout
    r = json.loads(out.read_text())
    assert r["compute_only"]["samples_per_s"] > 0 and r["end_to_end"]["samples_per_s"] > 0
    assert r["end_to_end"]["measured_steps"] == 3
    assert r["matmul_peak_tflops"] > 0 and 0 < r["end_to_end_over_compute"]
    # The peak is the end-to-end run's own, bounded by time, as every training run records it.
    assert r["matmul_peak_tflops"] == r["end_to_end"]["peak"]["tflops"]
    assert r["end_to_end"]["peak"]["budget_s"] == 1.0 and r["end_to_end"]["peak"]["dtype"] == "float32"
    assert r["utilisation_end_to_end"] == pytest.approx(r["tflops_end_to_end"] / r["matmul_peak_tflops"])
    assert 0 <= r["end_to_end"]["data_wait_fraction"] < 1 and 0 < r["metrics_share"] < 1
    expected_flops = r["gflop_per_sample"] * 1e9 * r["end_to_end"]["samples_per_s"] / 1e12
    assert abs(r["tflops_end_to_end"] - expected_flops) < 1e-9


@pytest.mark.slow
def test_each_part_warms_up_cold_and_the_output_says_what_it_measured(tmp_path):
    """Run in one process, the end-to-end part reused the compute-only part's compiled graph
    (7.2 s of warm-up became 0.1 s). Each part now runs in a process of its own, with an empty
    compile cache of its own, and the output says so; data wait is named as host time."""
    out = tmp_path / "bench.json"
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--profile", "parity", "--crop", "32x48",
                       "--batch-size", "2", "--steps", "2", "--warmup", "1", "--model-width", "8",
                       "--workers", "0", "--no-peak", "--matmul-size", "64", "--json", out])
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    # --no-peak: no yardstick, said so; the fixed-size peak's flag of older command lines is ignored aloud
    assert r["matmul_peak_tflops"] is None and "utilisation vs matmul peak (end to end): n/a" in proc.stdout
    assert "matmul peak: not measured (--no-peak was given)" in proc.stdout
    assert "--matmul-size is ignored" in proc.stderr
    compute, e2e = r["compute_only"]["warmup_state"], r["end_to_end"]["warmup_state"]
    assert compute["process"] != e2e["process"]
    assert compute["compile_cache"] != e2e["compile_cache"]
    assert compute["compile_cache_was_empty"] and e2e["compile_cache_was_empty"]
    assert "warm-up s (cold)" in proc.stdout and "empty compile cache" in proc.stdout
    assert "host blocked on the loader, not device idle time" in proc.stdout
    assert r["end_to_end"]["eval_warmup_s"] == 0.0  # the CPU compiles nothing per shape


@pytest.mark.slow
def test_bench_rejects_a_crop_the_unet_cannot_take():
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--crop", "30x48"])
    assert proc.returncode == 2 and "multiples of 16" in proc.stderr


def test_the_training_flags_are_the_settings_own_with_the_benchmarks_defaults():
    from unetbench.core.registry import BACKENDS
    from unetbench.core.settings import Settings
    from unetbench.training.bench import build_parser, run_settings
    args = build_parser().parse_args([])
    assert args.backend == next(iter(BACKENDS))   # the registry's first, not a name written here
    assert (args.profile, args.warmup_steps, args.workers, args.splits, args.out) == ("fast", 15, 6, None, None)
    assert (args.batch_size, args.model_width, args.model) == (Settings.batch_size, Settings.model_width, Settings.model)
    assert args.crop == (384, 512) and args.steps == 100
    # Both spellings of the warm-up; the training's own checks and messages.
    assert build_parser().parse_args(["--warmup", "3"]).warmup_steps == 3
    assert build_parser().parse_args(["--warmup-steps", "4"]).warmup_steps == 4
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--batch-size", "0"])
    args = build_parser().parse_args(["--splits", "d/s.json", "--out", "o", "--warmup", "2", "--steps", "5",
                                      "--trace-steps", "1", "--model-width", "8"])
    settings = run_settings(args, "cpu", compile_cache=None)
    assert (settings.splits, settings.out, settings.run_name, settings.epochs) == ("d/s.json", "o", "bench_cpu", 1)
    assert settings.max_steps_per_epoch == 2 + 1 + 5 and settings.model_width == 8 and settings.profile == "fast"
    # The training's switches too: --no-peak reaches the end-to-end run's settings.
    assert not settings.no_peak and run_settings(build_parser().parse_args(["--no-peak"]), "cpu", None).no_peak
