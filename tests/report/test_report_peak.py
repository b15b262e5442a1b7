"""The report's share of each chip's own measured peak: python -m pytest tests/report/test_report_peak.py"""

from __future__ import annotations

import jsonschema
from results_fixtures import make_result, write_result

from unetbench.report.compare import build_comparison
from unetbench.report.load import load_runs
from unetbench.report.sections import build_tables
from unetbench.report.tables import render_markdown
from unetbench.report.validate import load_schema


def _performance(tmp_path, results):
    for r in results:
        jsonschema.validate(r, load_schema())
        write_result(tmp_path, r)
    tables = build_tables(build_comparison(load_runs([tmp_path])))
    return next(t for t in tables if t.key == "performance")


def test_tflops_and_share_of_the_measured_peak_stand_beside_samples_per_s(tmp_path):
    # An H100 and a Gaudi 2 at their measured bf16 matmul peaks (MAMF finder: 794.5 and 418.7).
    table = _performance(tmp_path, [make_result("cuda", "fast", samples_per_s=300.0, peak_tflops=794.5),
                                    make_result("gaudi_lazy", "fast", samples_per_s=150.0, peak_tflops=418.7)])
    headers = table.headers
    assert headers[3:7] == ["samples/s", "TFLOP/s", "peak TFLOP/s", "% of measured peak"]   # after group, n, math
    rows = {row[0]: row for row in table.rows}
    assert rows["cuda/fast"][3:7] == ["300.0", "260.40", "794.50", "32.8"]       # 300 x 0.868 / 794.5
    assert rows["gaudi_lazy/fast"][3:7] == ["150.0", "130.20", "418.70", "31.1"]
    assert "% of measured peak" in render_markdown(table)


def test_results_from_before_the_peak_show_n_a_not_an_error(tmp_path):
    table = _performance(tmp_path, [make_result("cuda", samples_per_s=100.0),
                                    make_result("gaudi_lazy", samples_per_s=120.0, peak_tflops=400.0)])
    rows = {row[0]: row for row in table.rows}
    assert rows["cuda/parity"][4:7] == ["n/a", "n/a", "n/a"]
    assert rows["gaudi_lazy/parity"][6] == "26.0"    # 120 x 0.868 / 400
    assert any("n/a: no peak" in note for note in table.notes)
