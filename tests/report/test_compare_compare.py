"""Grouping, comparability, baselines and statements: python -m pytest tests/report/test_compare_compare.py"""

from __future__ import annotations

import pytest
from results_fixtures import make_result, write_result

from unetbench.core.errors import UserError
from unetbench.report.compare import build_comparison
from unetbench.report.load import load_runs
from unetbench.report.sections import build_tables
from unetbench.report.tables import render_text


def compare(tmp_path, results, baseline=None):
    for r in results:
        write_result(tmp_path, r)
    return build_comparison(load_runs([tmp_path]), baseline=baseline)


def group(comp, label):
    return next(g for g in comp.groups if g.label == label)


def test_repeated_runs_give_median_and_min_max(tmp_path):
    comp = compare(tmp_path, [make_result("cuda", seed=s, samples_per_s=v) for s, v in enumerate([100.0, 130.0, 110.0])])
    stat = group(comp, "cuda/parity").stats["samples_per_s"]
    assert (stat.median, stat.lo, stat.hi, stat.n) == (110.0, 100.0, 130.0, 3)


def test_only_complete_runs_are_aggregated(tmp_path):
    comp = compare(tmp_path, [make_result("cuda", seed=0, samples_per_s=100.0),
                              make_result("cuda", seed=1, samples_per_s=999.0, status="interrupted")])
    assert group(comp, "cuda/parity").stats["samples_per_s"].n == 1


@pytest.mark.parametrize("change,field", [
    ({"splits_sha256": "b" * 64}, "dataset"), ({"crop": (256, 256)}, "crop"),
    ({"batch": 8}, "batch_size"), ({"epochs": 5}, "epochs"), ({"precision": "bf16"}, "precision"),
])
def test_non_comparable_pairs_get_no_speedup(tmp_path, change, field):
    comp = compare(tmp_path, [make_result("cuda", samples_per_s=200.0),
                              make_result("gaudi_lazy", samples_per_s=100.0, **change)])
    s = comp.speedups["gaudi_lazy/parity"]
    assert s["speedup"] is None
    assert f"{field} differs" in s["reason"]
    perf = render_text(next(t for t in build_tables(comp) if t.key == "performance"))
    assert "n/c [1]" in perf and f"{field} differs" in perf
    assert "0.50x" not in perf
    assert not any("is the fastest" in line for line in comp.statements)
    assert any("not comparable" in line and field in line for line in comp.statements)


def test_cross_profile_speed_is_allowed_but_labelled(tmp_path):
    comp = compare(tmp_path, [make_result("cuda", "parity", samples_per_s=100.0),
                              make_result("cuda", "fast", samples_per_s=241.0)])
    s = comp.speedups["cuda/fast"]
    assert s["speedup"] == pytest.approx(2.41)
    assert "different profiles" in s["note"]
    line = next(x for x in comp.statements if x.startswith("[all profiles]") and "fastest" in x)
    assert "cuda/fast is the fastest: 2.41x" in line and "different profiles" in line


def test_statement_inside_and_outside_spread(tmp_path):
    inside = compare(tmp_path / "a", [make_result("cuda", seed=s, samples_per_s=v) for s, v in enumerate([100.0, 120.0])]
                     + [make_result("gaudi_lazy", seed=s, samples_per_s=v) for s, v in enumerate([110.0, 125.0])])
    assert any("inside the run-to-run spread" in x for x in inside.statements)
    outside = compare(tmp_path / "b", [make_result("cuda", seed=s, samples_per_s=v) for s, v in enumerate([100.0, 101.0])]
                      + [make_result("gaudi_lazy", seed=s, samples_per_s=v) for s, v in enumerate([150.0, 151.0])])
    line = next(x for x in outside.statements if "fastest" in x)
    assert "gaudi_lazy/parity is the fastest: 1.50x" in line and "outside the run-to-run spread" in line
    single = compare(tmp_path / "c", [make_result("cuda", samples_per_s=100.0), make_result("cpu", samples_per_s=5.0)])
    assert any("spread is unknown" in x for x in single.statements)


def test_mixed_runs_inside_a_group_are_flagged(tmp_path):
    comp = compare(tmp_path, [make_result("cuda", seed=0, epochs=3), make_result("cuda", seed=1, epochs=5),
                              make_result("cpu", samples_per_s=5.0)])
    assert group(comp, "cuda/parity").conflicts == {"epochs": ["3", "5"]}
    assert comp.speedups["cpu/parity"]["speedup"] is None
    assert any("differ in epochs" in x for x in comp.statements)


def test_baseline_default_and_choice(tmp_path):
    results = [make_result("cpu", samples_per_s=10.0), make_result("cuda", "fast", samples_per_s=300.0),
               make_result("cuda", "parity", samples_per_s=100.0)]
    for r in results:
        write_result(tmp_path, r)
    runs = load_runs([tmp_path])
    assert build_comparison(runs).baseline.label == "cuda/parity"
    assert build_comparison(runs, "cuda:fast").baseline.label == "cuda/fast"
    assert build_comparison(runs, "cpu").speedups["cuda/parity"]["speedup"] == pytest.approx(10.0)
    with pytest.raises(UserError, match="cpu:parity"):
        build_comparison(runs, "gaudi_lazy")


def test_baseline_falls_back_to_first_group(tmp_path):
    comp = compare(tmp_path, [make_result("cpu"), make_result("gaudi_eager")])
    assert comp.baseline.label == "gaudi_eager/parity"


def test_scaling_efficiency(tmp_path):
    comp = compare(tmp_path, [make_result("gaudi_lazy", samples_per_s=100.0),
                              make_result("gaudi_lazy", samples_per_s=700.0, world_size=8, nodes=1),
                              make_result("gaudi_lazy", samples_per_s=300.0, world_size=4, batch=8)])
    rows = {r["world_size"]: r for r in comp.scaling}
    assert rows[8]["speedup"] == pytest.approx(7.0) and rows[8]["efficiency"] == pytest.approx(0.875)
    assert rows[4]["speedup"] is None and "batch_size differs" in rows[4]["note"]
    table = render_text(next(t for t in build_tables(comp) if t.key == "scaling"))
    assert "88%" in table


def test_nan_figures_count_as_missing(tmp_path):
    bad = make_result("cuda", seed=1)
    bad["history"][0]["train_loss"] = float("nan")
    bad["test"]["miou"] = float("nan")
    comp = compare(tmp_path, [make_result("cuda", seed=0, test_miou=0.5), bad])
    assert group(comp, "cuda/parity").stats["test_miou"].median == 0.5


def test_every_table_has_a_heading_for_each_cell(tmp_path):
    comp = compare(tmp_path, [make_result("cuda", samples_per_s=200.0), make_result("gaudi_lazy", samples_per_s=100.0)])
    for table in build_tables(comp):
        assert all(len(row) == len(table.headers) for row in table.rows), (table.key, table.headers, table.rows)


def test_parity_figures_are_labelled_fp32_without_tf32_and_tf32_runs_are_not_compared_with_them(tmp_path):
    tf32 = make_result("cuda", "parity", seed=1, samples_per_s=180.0)
    tf32["environment"]["math_mode"]["tf32"] = True   # --allow-tf32
    comp = compare(tmp_path, [make_result("cuda", "parity", seed=0, samples_per_s=100.0), tf32,
                              make_result("gaudi_lazy", "parity", samples_per_s=90.0)])
    tables = {t.key: t for t in build_tables(comp)}
    for key in ("performance", "quality", "memory"):
        table = tables[key]
        math = {row[0]: row[table.headers.index("math")] for row in table.rows}
        assert math["gaudi_lazy/parity"] == "FP32, no TF32", key
        assert any("FP32, no TF32" in note and "--allow-tf32" in note for note in table.notes), key
    setup = tables["setup"]
    mixed = setup.rows[0][setup.headers.index("math")]
    assert mixed.startswith("mixed: ") and set(mixed[7:].split("/")) == {"FP32, no TF32", "FP32 with TF32"}
    assert any("differ in precision" in line for line in comp.statements)


def test_a_figure_missing_from_some_runs_says_over_how_many_runs_it_is(tmp_path):
    runs = [make_result("cuda", seed=s, samples_per_s=v) for s, v in enumerate([100.0, 120.0, 110.0])]
    runs[1]["memory"]["peak_allocated_gb"] = None      # one run recorded no peak memory
    comp = compare(tmp_path, runs)
    memory = next(t for t in build_tables(comp) if t.key == "memory")
    row = memory.rows[0]
    assert any("(2 of 3 runs)" in str(value) for value in row), row
    performance = next(t for t in build_tables(comp) if t.key == "performance")
    assert not any("of 3 runs" in str(value) for value in performance.rows[0])
