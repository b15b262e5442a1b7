"""Run-to-run noise on made-up results: MLPerf-style time to target, bootstrap intervals,
"within noise" instead of a speedup, --baseline-dir flagging a regression, and bad input."""

import json

import pytest
from helpers import run_script
from report_fixtures import with_quality
from results_fixtures import make_result, write_result

from unetbench.report.compare import build_comparison
from unetbench.report.load import load_runs
from unetbench.report.noise import (
    bootstrap_interval,
    change_flag,
    intervals_overlap,
    mlperf_time,
)
from unetbench.report.sections import build_tables


# ---- the statistics ---------------------------------------------------------------------
def test_mlperf_time_drops_the_fastest_and_slowest_of_five():
    score = mlperf_time([50.0, 10.0, 30.0, 40.0, 20.0])
    assert score.value == pytest.approx(30.0) and "MLPerf" in score.method and score.reached == 5


def test_mlperf_time_counts_one_miss_as_the_slowest_but_not_two():
    assert mlperf_time([10.0, 20.0, 30.0, 40.0, None]).value == pytest.approx(30.0)
    two = mlperf_time([10.0, 20.0, 30.0, None, None])
    assert two.value is None and "not reached in 2 of 5" in two.method


def test_fewer_than_five_runs_give_a_median_named_as_such():
    score = mlperf_time([10.0, 30.0, 20.0])
    assert score.value == 20.0 and "median of 3" in score.method and "5 runs" in score.method
    assert mlperf_time([10.0, None]).value is None
    assert mlperf_time([12.5]).method == "single run"


def test_bootstrap_interval_holds_the_median_and_needs_three_runs():
    lo, hi = bootstrap_interval([100.0, 101.0, 99.0, 100.5, 99.5])
    assert lo <= 100.0 <= hi and hi - lo < 3
    assert bootstrap_interval([1.0, 2.0]) is None
    assert bootstrap_interval([1.0, 2.0, 3.0]) == bootstrap_interval([1.0, 2.0, 3.0])  # seeded: reproducible


def test_interval_overlap():
    assert intervals_overlap((1, 3), (2, 4)) is True
    assert intervals_overlap((1, 2), (3, 4)) is False
    assert intervals_overlap(None, (3, 4)) is None


def test_change_flag_uses_intervals_with_repeats_and_a_threshold_without():
    assert change_flag([80.0, 81.0, 79.0], [100.0, 101.0, 99.0], 0.05)[0] is True
    assert change_flag([100.0, 102.0, 98.0], [101.0, 99.0, 100.0], 0.05)[0] is False
    flagged, why = change_flag([90.0], [100.0], 0.05)
    assert flagged is True and "noise unknown" in why
    assert change_flag([98.0], [100.0], 0.05)[0] is False


# ---- in the report ----------------------------------------------------------------------
def _group_runs(folder, backend, speeds, times=None):
    for seed, speed in enumerate(speeds):
        res = make_result(backend, samples_per_s=speed, seed=seed)
        if times is not None:
            with_quality(res, 0.5, times[seed])
        write_result(folder, res)


def _tables(folder):
    comp = build_comparison(load_runs([folder]), baseline="cuda")
    return {t.key: t for t in build_tables(comp)}


def test_overlapping_intervals_say_within_noise_instead_of_a_speedup(tmp_path):
    _group_runs(tmp_path, "cuda", [100.0, 104.0, 96.0, 102.0, 98.0])
    _group_runs(tmp_path, "gaudi_lazy", [101.0, 105.0, 97.0, 103.0, 99.0])
    tables = _tables(tmp_path)
    gaudi = [row for row in tables["performance"].rows if row[0] == "gaudi_lazy/parity"][0]
    assert gaudi[-1].startswith("within noise") and not gaudi[-1].endswith("x")
    noise = [row for row in tables["noise"].rows if row[0] == "gaudi_lazy/parity"][0]
    assert noise[-1] == "within noise"


def test_separated_intervals_give_the_speedup(tmp_path):
    _group_runs(tmp_path, "cuda", [100.0, 101.0, 99.0, 100.5, 99.5])
    _group_runs(tmp_path, "gaudi_lazy", [150.0, 151.0, 149.0, 150.5, 149.5])
    tables = _tables(tmp_path)
    gaudi = [row for row in tables["performance"].rows if row[0] == "gaudi_lazy/parity"][0]
    assert gaudi[-1] == "1.50x"
    assert [row for row in tables["noise"].rows if row[0] == "gaudi_lazy/parity"][0][-1] == "1.50x"


def test_time_to_target_table_scores_mlperf_style_and_says_not_reached(tmp_path):
    _group_runs(tmp_path, "cuda", [100.0] * 5, times=[60.0, 10.0, 62.0, 64.0, 200.0])
    _group_runs(tmp_path, "gaudi_lazy", [100.0] * 5, times=[40.0, None, None, 41.0, 42.0])
    rows = {row[0]: row for row in _tables(tmp_path)["time_to_target"].rows}
    assert rows["cuda/parity"][3] == "5/5" and rows["cuda/parity"][4] == "62.0"
    assert rows["gaudi_lazy/parity"][3] == "3/5" and rows["gaudi_lazy/parity"][4] == "not reached"


def test_time_to_target_ratio_is_claimed_only_outside_the_noise(tmp_path):
    _group_runs(tmp_path / "a", "cuda", [100.0] * 5, times=[60.0, 50.0, 70.0, 55.0, 65.0])
    _group_runs(tmp_path / "a", "gaudi_lazy", [100.0] * 5, times=[58.0, 48.0, 68.0, 53.0, 63.0])
    _group_runs(tmp_path / "b", "cuda", [100.0] * 5, times=[60.0, 61.0, 59.0, 60.5, 59.5])
    _group_runs(tmp_path / "b", "gaudi_lazy", [100.0] * 5, times=[30.0, 31.0, 29.0, 30.5, 29.5])
    overlapping = {row[0]: row for row in _tables(tmp_path / "a")["time_to_target"].rows}
    separated = {row[0]: row for row in _tables(tmp_path / "b")["time_to_target"].rows}
    assert overlapping["gaudi_lazy/parity"][5].startswith("within noise")
    assert separated["gaudi_lazy/parity"][5] == "2.00x"


def test_no_target_no_time_to_target_table(tmp_path):
    _group_runs(tmp_path, "cuda", [100.0])
    assert "time_to_target" not in _tables(tmp_path) and "noise" not in _tables(tmp_path)


# ---- --baseline-dir ---------------------------------------------------------------------
def test_baseline_dir_flags_a_made_up_regression(tmp_path):
    _group_runs(tmp_path / "old", "cuda", [100.0, 101.0, 99.0])
    _group_runs(tmp_path / "old", "gaudi_lazy", [150.0, 151.0, 149.0])
    _group_runs(tmp_path / "new", "cuda", [100.5, 99.5, 100.0])         # unchanged
    _group_runs(tmp_path / "new", "gaudi_lazy", [120.0, 121.0, 119.0])   # a 20% regression
    proc = run_script(["compare_results.py", tmp_path / "new", "--baseline-dir", tmp_path / "old",
                       "--json", tmp_path / "summary.json"])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "summary.json").read_text())["tables"]["baseline_dir"]
    speed = {r["group"]: r for r in rows if r["figure"] == "samples/s"}
    assert speed["gaudi_lazy/parity"]["verdict"].startswith("CHANGED") and speed["gaudi_lazy/parity"]["change"] == "-20.0%"
    assert speed["cuda/parity"]["verdict"].startswith("within noise")
    assert "Changed since the earlier run: gaudi_lazy/parity samples/s" in proc.stdout


@pytest.mark.parametrize("make", ["missing", "empty", "only_failed"])
def test_baseline_dir_without_results_is_refused_and_nothing_is_written(tmp_path, make):
    _group_runs(tmp_path / "new", "cuda", [100.0])
    old = tmp_path / "old"
    if make != "missing":
        old.mkdir()
    if make == "only_failed":
        write_result(old, make_result("cuda", status="failed"))
    proc = run_script(["compare_results.py", tmp_path / "new", "--baseline-dir", old, "--report-dir", tmp_path / "rep"])
    assert proc.returncode == 2
    assert f"--baseline-dir {old}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "rep").exists()
