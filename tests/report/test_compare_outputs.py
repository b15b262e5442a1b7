"""The CLI and its Markdown, CSV, JSON and PNG outputs: python -m pytest tests/report/test_compare_outputs.py"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from helpers import REPO
from results_fixtures import make_result, write_result

from unetbench.report.cli import main


@pytest.fixture
def results_dir(tmp_path):
    folder = tmp_path / "results"
    for s in range(2):
        write_result(folder, make_result("cuda", seed=s, samples_per_s=100.0 + s))
        write_result(folder, make_result("gaudi_lazy", seed=s, samples_per_s=130.0 + s,
                                         energy={"energy_j": 9000.0, "avg_power_w": 350.0, "source": "hl-smi"}))
    write_result(folder, make_result("cpu", samples_per_s=4.0, batch=8))                      # not comparable
    write_result(folder, make_result("gaudi_eager", status="failed"))
    write_result(folder, make_result("gaudi_lazy", "fast", status="interrupted"))
    (folder / "results_truncated.json").write_text('{"schema_version": 1, "run_')
    (folder / "results_v0.json").write_text('{"schema_version": 0}')
    return folder


def test_report_dir_writes_everything(results_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(results_dir), "--report-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    for title in ("Runs", "Performance", "Memory", "Quality", "Per-class test IoU", "Energy", "Findings"):
        assert title in printed

    md = (out / "report.md").read_text()
    assert "| cuda/parity | 2 |" in md
    assert "not comparable: batch_size differs (8 vs 16)" in md
    assert "1.30x" in md                                             # gaudi_lazy vs the cuda parity baseline
    for state in ("failed", "interrupted", "corrupt", "schema-mismatch"):
        assert state in md
    for cls in ("road", "pedestrian"):
        assert f"| {cls} |" in md
    links = [line.split("(")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(links) >= 6
    for link in links:                                               # relative links that resolve
        png = out / link
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 9                                            # one row per file, broken ones included
    by_name = {r["run_name"]: r for r in rows}
    assert by_name["cuda_parity_0"]["samples_per_s"] == "100.0"
    assert by_name["gaudi_lazy_parity_1"]["energy_kj"] == "9.0"
    assert by_name["truncated"]["state"] == "corrupt"
    assert "iou_road" in rows[0] and "step_p90_ms" in rows[0] and "batch_size" in rows[0]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"] == "cuda/parity"
    groups = {g["group"]: g for g in summary["groups"]}
    assert groups["gaudi_lazy/parity"]["speedup_vs_baseline"] == pytest.approx(1.30, abs=0.01)
    assert groups["cpu/parity"]["speedup_vs_baseline"] is None
    assert "batch_size differs" in groups["cpu/parity"]["speedup_note"]
    assert summary["tables"]["performance"]


def test_energy_columns_only_when_some_run_has_energy(tmp_path, capsys):
    write_result(tmp_path, make_result("cuda"))
    out = tmp_path / "r.md"
    assert main([str(tmp_path), "--markdown", str(out), "-q"]) == 0
    assert "Energy" not in out.read_text()


def test_exit_two_when_nothing_valid(tmp_path, capsys):
    write_result(tmp_path, make_result(status="failed"))
    (tmp_path / "results_bad.json").write_text("{")
    proc = subprocess.run([sys.executable, "compare_results.py", str(tmp_path), "--csv", str(tmp_path / "s.csv")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no complete run among 2 result files" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "s.csv").is_file()                            # the listing of why is still written
    empty = subprocess.run([sys.executable, "compare_results.py", str(tmp_path / "nothing")],
                           cwd=REPO, capture_output=True, text=True)
    assert empty.returncode == 2 and "Traceback" not in empty.stderr


def test_tables_do_not_import_matplotlib(results_dir):
    code = ("import sys; from unetbench.report.cli import main; "
            f"main([{str(results_dir)!r}, '-q']); assert 'matplotlib' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_explicit_files_and_baseline_flag(results_dir, capsys):
    files = [str(p) for p in sorted(results_dir.glob("results_cuda_*.json"))] + [str(results_dir / "results_cpu_parity_0.json")]
    assert main(files + ["--baseline", "cpu", "--expect", "cuda,gaudi_eager"]) == 0
    printed = capsys.readouterr().out
    assert "speedup vs cpu/parity" in printed
    assert "no results for expected backend gaudi_eager" in printed
