"""One writer per output folder (core/output_lock.py): compare_results.py --report-dir and
run_benchmark.sh --run-dir refuse while another run writes there, naming it; prepare's own
case is in tests/data/test_prepare_robustness.py.

    python -m pytest tests/core/test_output_lock.py
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from helpers import write_site
from results_fixtures import make_result, write_result

from unetbench.core.errors import UserError
from unetbench.core.output_lock import lock_path, output_lock


@pytest.fixture
def held(tmp_path):
    """lock(folder): the folder's lock held by a living process of this host, as another run's."""
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def lock(folder, tool):
        lock_path(folder).parent.mkdir(parents=True, exist_ok=True)
        lock_path(folder).write_text(json.dumps({"host": socket.gethostname(), "pid": alive.pid, "tool": tool,
                                                 "started": "2026-12-04T10:00:00"}))
    yield lock
    alive.kill()
    alive.wait()


def test_a_comparison_into_a_report_folder_being_written_is_refused(tmp_path, held, capsys):
    from unetbench.report.cli import main
    results, report = tmp_path / "results", tmp_path / "report"
    write_result(results, make_result("cuda"))
    report.mkdir()
    (report / "report.md").write_text("the other comparison's")
    held(report, "compare_results.py")
    with pytest.raises(UserError, match=r"report is being written by compare_results.py \(pid \d+ on "):
        main([str(results), "--report-dir", str(report), "--quiet"])
    assert (report / "report.md").read_text() == "the other comparison's"


def test_a_second_run_benchmark_into_a_run_folder_being_made_is_refused(bench, stub, tmp_path, held):
    run_dir = tmp_path / "run"
    held(run_dir, "run_benchmark.sh")
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--site", site, "--synthetic", "--skip-verify", "--run-dir", run_dir],
                 stub["env"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is being written by run_benchmark.sh" in proc.stderr and "choose another --run-dir" in proc.stderr
    assert not stub["log"].exists(), "nothing was submitted"


def test_the_lock_is_released_when_the_work_fails(tmp_path):
    folder = tmp_path / "out"
    with pytest.raises(RuntimeError), output_lock(folder, "tool", "--out"):
        assert lock_path(folder).exists()
        raise RuntimeError("the work failed")
    assert not lock_path(folder).exists()
    with output_lock(folder, "tool", "--out"):   # free again
        pass


def test_a_report_folder_holding_what_the_report_did_not_write_is_refused_not_replaced(tmp_path):
    from unetbench.report.cli import main
    results, report = tmp_path / "results", tmp_path / "report"
    write_result(results, make_result("cuda"))
    report.mkdir()
    (report / "report.md").write_text("an earlier report: ours to replace")
    (report / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match=r"holds notes.txt, which compare_results.py did not write"):
        main([str(results), "--report-dir", str(report), "--quiet"])
    assert (report / "notes.txt").read_text() == "the user's"
    (report / "notes.txt").unlink()
    assert main([str(results), "--report-dir", str(report), "--quiet"]) == 0
    assert (report / "report.md").read_text() != "an earlier report: ours to replace"
