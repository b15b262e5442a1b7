"""Energy from results or the monitor CSV: python -m pytest tests/report/test_compare_energy.py"""

from __future__ import annotations

import pytest
from results_fixtures import make_result, write_monitor, write_result

from unetbench.report.energy import integrate, parse_iso, run_energy
from unetbench.report.load import load_run


def test_trapezoid_of_a_ramp_with_interpolated_edges():
    samples = [(0.0, 0.0), (10.0, 100.0)]          # power rises 10 W per second
    joules, covered = integrate(samples, 2.0, 6.0)  # mean power 40 W over 4 s
    assert joules == pytest.approx(160.0)
    assert covered == pytest.approx(4.0)


def test_monitor_energy_is_per_device_and_summed(tmp_path):
    res = make_result("cuda", world_size=2)
    path = write_result(tmp_path, res)
    start, end = parse_iso(res["started_at"]), parse_iso(res["finished_at"])
    write_monitor(tmp_path, res["run_name"], start, end, watts=300.0, devices=2, interval=0.7)
    energy = run_energy(load_run(path))
    assert energy["energy_j"] == pytest.approx(2 * 300.0 * (end - start))
    assert energy["avg_power_w"] == pytest.approx(600.0)
    assert energy["coverage"] == pytest.approx(1.0)
    assert energy["source"].startswith("monitor:")


def test_results_energy_wins_over_monitor(tmp_path):
    res = make_result(energy={"energy_j": 1234.0, "avg_power_w": 99.0, "source": "nvml"})
    path = write_result(tmp_path, res)
    write_monitor(tmp_path, res["run_name"], parse_iso(res["started_at"]), parse_iso(res["finished_at"]), 500.0)
    energy = run_energy(load_run(path))
    assert energy["energy_j"] == 1234.0 and energy["source"] == "nvml"


def test_partial_monitor_reports_coverage(tmp_path):
    res = make_result()
    path = write_result(tmp_path, res)
    start, end = parse_iso(res["started_at"]), parse_iso(res["finished_at"])
    mid = (start + end) / 2
    write_monitor(tmp_path, res["run_name"], start, mid, 100.0, margin=0.0)
    energy = run_energy(load_run(path))
    assert energy["coverage"] == pytest.approx(0.5, abs=0.05)


def test_no_monitor_and_no_energy_means_none(tmp_path):
    assert run_energy(load_run(write_result(tmp_path, make_result()))) is None


def test_garbage_rows_are_skipped(tmp_path):
    res = make_result()
    path = write_result(tmp_path, res)
    start, end = parse_iso(res["started_at"]), parse_iso(res["finished_at"])
    mon = write_monitor(tmp_path, res["run_name"], start, end, 200.0)
    with open(mon, "a") as fh:
        fh.write("not,a,row\n1e12,0,1,1,")   # a partly written last line
    assert run_energy(load_run(path))["energy_j"] == pytest.approx(200.0 * (end - start))


def test_only_the_runs_own_gpus_of_a_monitor_file_that_lists_the_node_are_integrated(tmp_path):
    """A run without nvidia-ml-py (no in-process energy) whose monitor wrote all four GPUs of the
    node (an older monitor, or one that could not tell the job's GPUs): the results name the
    run's two, by nvidia-smi index, and only they count."""
    res = make_result("cuda", world_size=2)
    res["energy"] = {"energy_j": None, "absent": "nvidia-ml-py is not installed", "monitor_devices": [1, 3]}
    path = write_result(tmp_path, res)
    start, end = parse_iso(res["started_at"]), parse_iso(res["finished_at"])
    write_monitor(tmp_path, res["run_name"], start, end, watts=300.0, devices=4, interval=0.7)
    energy = run_energy(load_run(path))
    assert energy["energy_j"] == pytest.approx(2 * 300.0 * (end - start))
    assert energy["devices"] == 2
    del res["energy"]["monitor_devices"]   # results from before the field: every device in the file
    assert run_energy(load_run(write_result(tmp_path, res)))["devices"] == 4
