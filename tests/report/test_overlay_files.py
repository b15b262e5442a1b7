"""Overlays files the report cannot use are left out with a warning naming the file, never a
traceback: python -m pytest tests/report/test_overlay_files.py"""

from __future__ import annotations

import logging

from report_fixtures import write_overlays_for
from results_fixtures import make_result, write_result

from unetbench.report.compare import build_comparison
from unetbench.report.load import load_runs
from unetbench.report.overlay_figures import _load


def _runs(tmp_path, damage):
    good, bad = make_result("cuda", seed=0), make_result("gaudi_lazy", seed=1)
    write_overlays_for(tmp_path, good)
    path = write_overlays_for(tmp_path, bad)
    damage(path)
    write_result(tmp_path, good)
    write_result(tmp_path, bad)
    return build_comparison(load_runs([tmp_path])), path


def test_a_truncated_overlays_file_is_left_out_with_its_name(tmp_path, caplog):
    comp, path = _runs(tmp_path, lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))
    with caplog.at_level(logging.WARNING):
        found = _load(comp)
    assert [label for label, _ in found] == ["cuda/parity"]
    assert f"overlays {path} unreadable" in caplog.text and "not a complete overlays file" in caplog.text


def test_a_missing_overlays_file_is_named_not_skipped_silently(tmp_path, caplog):
    comp, path = _runs(tmp_path, lambda p: p.unlink())
    with caplog.at_level(logging.WARNING):
        found = _load(comp)
    assert [label for label, _ in found] == ["cuda/parity"]
    assert f"overlays {path}" in caplog.text and "is missing" in caplog.text
