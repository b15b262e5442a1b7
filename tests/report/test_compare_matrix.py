"""The benchmark matrix (rows workloads, columns backends) and the report's refusal to compare
runs of different workloads (model x dataset)."""

from __future__ import annotations

from pathlib import Path

from helpers import run_script
from results_fixtures import make_result, write_result

from unetbench.report.compare import build_comparison
from unetbench.report.load import load_runs
from unetbench.report.matrix import matrix_cells, matrix_table

SPEED = {  # (model, dataset) -> backend -> samples/s
    ("unet", "carla-vd"): {"cuda": 300.0, "gaudi_lazy": 360.0, "cpu": 3.0},
    ("resunetpp", "kvasir-seg"): {"cuda": 900.0, "gaudi_lazy": 450.0},
    ("deeplabv3_resnet101", "oxford-pet"): {"cuda": 200.0, "cpu": 1.0},
}


def workload_result(backend: str, model: str, dataset: str, speed: float) -> dict:
    result = make_result(backend, run_name=f"{backend}_{model}_{dataset}", samples_per_s=speed,
                         splits_sha256=(dataset[0] * 64))
    result["model"].update(key=model, name=model)
    result["dataset"]["name"] = dataset
    return result


def write_matrix(folder):
    for (model, dataset), speeds in SPEED.items():
        for backend, speed in speeds.items():
            write_result(folder, workload_result(backend, model, dataset, speed))
    return folder


def test_matrix_cells_hold_speed_and_speedup_on_the_same_workload(tmp_path):
    comp = build_comparison(load_runs([write_matrix(tmp_path)]))
    cells = matrix_cells(comp.groups)
    assert set(cells) == {"unet x carla-vd", "resunetpp x kvasir-seg", "deeplabv3_resnet101 x oxford-pet"}
    assert cells["unet x carla-vd"]["gaudi_lazy/parity"]["speedup"] == 360.0 / 300.0
    assert cells["resunetpp x kvasir-seg"]["gaudi_lazy/parity"]["speedup"] == 0.5
    assert cells["deeplabv3_resnet101 x oxford-pet"]["cpu/parity"]["speedup"] == 1.0 / 200.0
    assert cells["unet x carla-vd"]["cuda/parity"]["speedup"] == 1.0


def test_groups_of_different_workloads_are_never_compared(tmp_path):
    comp = build_comparison(load_runs([write_matrix(tmp_path)]))
    labels = {g.label for g in comp.groups}
    assert "cuda/parity [resunetpp x kvasir-seg]" in labels and len(labels) == 7
    for label, speedup in comp.speedups.items():
        if not label.endswith(f"[{comp.baseline.workload}]"):
            assert speedup["speedup"] is None and "model differs" in speedup["reason"], label
    # no finding ranks groups of two workloads against each other
    assert comp.statements and not any("not compared" in s for s in comp.statements)
    assert any("[resunetpp x kvasir-seg] is the fastest: 2.00x" in s and "gaudi_lazy/parity [resunetpp x kvasir-seg]"
               in s for s in comp.statements)


def test_same_model_on_another_dataset_is_not_compared_either():
    from unetbench.report.compare import Group, differences
    from unetbench.report.load import RunRecord
    comp_runs = [RunRecord(path=Path(f"results_{d}.json"), name=d, state="complete", data=workload_result("cuda", "unet", d, 100.0))
                 for d in ("carla-vd", "kvasir-seg")]
    groups = build_comparison(comp_runs).groups
    assert len(groups) == 2 and "dataset differs" in "; ".join(differences(groups[0], groups[1]))
    assert isinstance(groups[0], Group)


def test_one_workload_prints_no_matrix(tmp_path):
    for backend in ("cuda", "cpu"):
        write_result(tmp_path, workload_result(backend, "unet", "carla-vd", 10.0))
    comp = build_comparison(load_runs([tmp_path]))
    assert matrix_table(comp) is None and all("[" not in g.label for g in comp.groups)


def test_compare_results_prints_the_matrix(tmp_path):
    proc = run_script(["compare_results.py", write_matrix(tmp_path / "results"), "--markdown", tmp_path / "r.md"])
    assert proc.returncode == 0, proc.stderr
    assert "Benchmark matrix" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("resunetpp x kvasir-seg"))
    assert "900.0 (1.00x)" in row and "450.0 (0.50x)" in row
    assert "Benchmark matrix" in (tmp_path / "r.md").read_text()
