"""Five accelerator backends and the CPU side by side, from stand-in results (no device here):
the report's tables, its setup table with each device's own settings, and the benchmark matrix
over two workloads, in the registry's order with speedups against CUDA."""

from __future__ import annotations

import re

import pytest
from helpers import run_script
from results_fixtures import make_result, write_result

from unetbench.core.registry import BACKENDS
from unetbench.report.compare import build_comparison, differences
from unetbench.report.load import load_runs
from unetbench.report.matrix import matrix_cells

# What each backend's results say of its device (the fields Backend.environment and
# Backend.device_settings write), and a speed on each workload.
DEVICES = {
    "cuda": ("NVIDIA H100 80GB HBM3", {"cudnn_benchmark": True}, 300.0),
    "rocm": ("AMD Instinct MI300X", {"miopen_find": "exhaustive", "miopen_find_mode": "default",
                                     "miopen_suggest_nhwc": "unset", "miopen_suggest_nhwc_batchnorm": "unset",
                                     "hipblaslt_allow_tf32": "unset"}, 270.0),
    "xpu": ("Intel(R) Data Center GPU Max 1550", {"event_timing": "torch.xpu.Event", "device_hierarchy": "COMPOSITE",
                                                  "device_unit": "card", "affinity_mask": "0"}, 240.0),
    "gaudi_lazy": ("Gaudi2", {}, 360.0),
    "gaudi_eager": ("Gaudi2", {}, 330.0),
    "cpu": ("x86_64", {}, 3.0),
}
WORKLOADS = {("unet", "carla-vd"): 1.0, ("resunetpp", "kvasir-seg"): 3.0}   # speed factor per workload


def device_result(backend: str, model: str, dataset: str, factor: float, seed: int = 0, **settings) -> dict:
    name, device_settings, speed = DEVICES[backend]
    result = make_result(backend, run_name=f"{backend}_{model}_{seed}", samples_per_s=speed * factor, seed=seed,
                         splits_sha256=dataset[0] * 64)
    result["model"].update(key=model, name=model)
    result["dataset"]["name"] = dataset
    result["environment"].update(device_name=name, device_settings={**device_settings, **settings})
    return result


def write_all(folder):
    for (model, dataset), factor in WORKLOADS.items():
        for backend in DEVICES:
            write_result(folder, device_result(backend, model, dataset, factor))
    return folder


def test_the_matrix_has_every_backend_in_registry_order_with_speedups_against_cuda(tmp_path):
    assert set(DEVICES) <= set(BACKENDS)
    comp = build_comparison(load_runs([write_all(tmp_path)]))
    cells = matrix_cells(comp.groups)
    row = cells["unet x carla-vd"]
    assert list(row) == [f"{b}/parity" for b in BACKENDS if b in DEVICES]
    assert row["rocm/parity"]["speedup"] == 270.0 / 300.0 and row["xpu/parity"]["speedup"] == 240.0 / 300.0
    assert cells["resunetpp x kvasir-seg"]["xpu/parity"]["speedup"] == 240.0 / 300.0
    # device settings differ between backends by nature: that never blocks a comparison
    groups = {g.backend: g for g in comp.groups if g.workload == "unet x carla-vd"}
    assert differences(groups["rocm"], groups["cuda"]) == []


@pytest.mark.slow
def test_the_report_shows_each_devices_settings_in_the_setup_table(tmp_path):
    results = write_all(tmp_path / "results")
    proc = run_script(["compare_results.py", results, "--markdown", tmp_path / "r.md", "--html", tmp_path / "r.html"])
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "r.md").read_text()
    assert "Benchmark matrix" in text and "device settings" in text
    setup = text[text.index("Setup (what must match)"):]
    assert re.search(r"rocm/parity.*miopen_find=exhaustive.*miopen_suggest_nhwc=unset", setup)
    assert re.search(r"xpu/parity.*device_unit=card.*event_timing=torch\.xpu\.Event", setup)
    html = (tmp_path / "r.html").read_text()
    for name, _, _ in DEVICES.values():
        assert name in html


def test_runs_of_one_backend_that_differ_in_a_device_setting_are_never_pooled_silently(tmp_path):
    write_result(tmp_path, device_result("rocm", "unet", "carla-vd", 1.0, seed=0))
    write_result(tmp_path, device_result("rocm", "unet", "carla-vd", 1.0, seed=1, miopen_suggest_nhwc="1"))
    write_result(tmp_path, device_result("cuda", "unet", "carla-vd", 1.0))
    comp = build_comparison(load_runs([tmp_path]))
    rocm = next(g for g in comp.groups if g.backend == "rocm")
    assert "device_settings" in rocm.conflicts
    assert any("Warning: the runs of rocm/parity differ in device_settings" in s for s in comp.statements)
    assert comp.speedups["rocm/parity"]["speedup"] is None


def test_a_run_from_before_device_settings_were_recorded_is_unknown_not_different(tmp_path):
    old = device_result("cuda", "unet", "carla-vd", 1.0, seed=0)
    del old["environment"]["device_settings"]
    write_result(tmp_path, old)
    write_result(tmp_path, device_result("cuda", "unet", "carla-vd", 1.0, seed=1))
    write_result(tmp_path, device_result("rocm", "unet", "carla-vd", 1.0))
    comp = build_comparison(load_runs([tmp_path]))
    cuda = next(g for g in comp.groups if g.backend == "cuda")
    assert cuda.conflicts == {} and cuda.values["device_settings"] == "cudnn_benchmark=True"
    assert not any("Warning" in s for s in comp.statements)
