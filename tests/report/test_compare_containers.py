"""Runs from different container images are never compared silently (report/fields.py container_text):
within one backend the image must match, like its device settings; across backends each has its own.

    PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pytest -q tests/report/test_compare_containers.py
"""

from __future__ import annotations

from results_fixtures import make_result, write_result

from unetbench.report.baseline import baseline_table, load_baseline
from unetbench.report.compare import build_comparison
from unetbench.report.load import load_runs
from unetbench.report.sections import build_tables
from unetbench.report.tables import render_text

NGC = {"runtime": "pyxis", "image": "nvcr.io#nvidia/pytorch:25.01-py3", "digest": None}


def in_image(result: dict, image: str | None, digest: str | None = "sha256:" + "1" * 64) -> dict:
    result["environment"]["container"] = (None if image is None else
                                          {"runtime": "apptainer", "image": image, "digest": digest})
    return result


def comparison(folder, results):
    for r in results:
        write_result(folder, r)
    return build_comparison(load_runs([folder]))


def test_runs_of_one_backend_from_two_images_are_flagged_not_pooled_silently(tmp_path):
    comp = comparison(tmp_path, [
        in_image(make_result("cuda", seed=0), "/images/pytorch-25.01.sif"),
        in_image(make_result("cuda", seed=1), "/images/pytorch-25.01.sif", "sha256:" + "2" * 64),  # rebuilt image
        in_image(make_result("gaudi_lazy"), "/images/gaudi.sif")])
    cuda = next(g for g in comp.groups if g.backend == "cuda")
    assert cuda.conflicts["container"] == ["apptainer pytorch-25.01.sif sha256:11111111",
                                           "apptainer pytorch-25.01.sif sha256:22222222"]
    assert any("the runs of cuda/parity differ in container" in s for s in comp.statements)
    assert comp.speedups["gaudi_lazy/parity"]["speedup"] is None
    setup = render_text(next(t for t in build_tables(comp) if t.key == "setup"))
    assert "container image" in setup and "mixed: apptainer pytorch-25.01.sif" in setup


def test_each_backend_in_its_own_image_is_comparable_and_the_setup_table_names_them(tmp_path):
    comp = comparison(tmp_path, [in_image(make_result("cuda", samples_per_s=200.0), "/images/pytorch.sif"),
                                 in_image(make_result("gaudi_lazy", samples_per_s=100.0), "/images/gaudi.sif")])
    assert comp.speedups["gaudi_lazy/parity"]["speedup"] == 0.5
    setup = render_text(next(t for t in build_tables(comp) if t.key == "setup"))
    assert "apptainer pytorch.sif sha256:11111111" in setup and "apptainer gaudi.sif sha256:11111111" in setup


def test_a_host_run_and_a_container_run_of_one_backend_are_not_compared(tmp_path):
    comp = comparison(tmp_path / "old", [in_image(make_result("cuda"), None)])
    new = comparison(tmp_path / "new", [in_image(make_result("cuda"), "/images/pytorch.sif")])
    table = baseline_table(new, load_baseline(tmp_path / "old"))
    assert comp.groups and table.rows[0][-1] == "not comparable"
    assert any("container differs (apptainer pytorch.sif sha256:11111111 vs none)" in note for note in table.notes)


def test_a_study_without_containers_gets_no_container_column(tmp_path):
    comp = comparison(tmp_path, [in_image(make_result("cuda"), None), in_image(make_result("gaudi_lazy"), None)])
    setup = next(t for t in build_tables(comp) if t.key == "setup")
    assert "container image" not in setup.headers and len(setup.rows[0]) == len(setup.headers)


def test_results_from_before_the_container_was_recorded_are_unknown_not_different(tmp_path):
    old = make_result("cuda", seed=0)
    old["environment"].pop("container", None)
    comp = comparison(tmp_path, [old, in_image(make_result("cuda", seed=1), "/images/pytorch.sif"),
                                 in_image(make_result("gaudi_lazy"), None)])
    assert next(g for g in comp.groups if g.backend == "cuda").conflicts == {}
    assert not any("Warning" in s for s in comp.statements)
    # A registry tag has no digest: said so, not left blank.
    ngc = make_result("cuda", seed=2)
    ngc["environment"]["container"] = NGC
    write_result(tmp_path / "ngc", ngc)
    text = render_text(next(t for t in build_tables(build_comparison(load_runs([tmp_path / "ngc"])))
                            if t.key == "setup"))
    assert "pyxis nvcr.io#nvidia/pytorch:25.01-py3 no digest" in text
