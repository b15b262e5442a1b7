"""The report's in-process energy columns, cost from site.env prices, top operations side by side."""

from __future__ import annotations

import pytest
from helpers import REPO, run, run_main, write_site
from results_fixtures import make_result, write_result

from unetbench.cluster.site_settings import Site
from unetbench.core.errors import UserError
from unetbench.report.cli import main
from unetbench.report.energy_cost import apply_prices, energy_figures
from unetbench.report.load import load_run
from unetbench.training.energy_windows import energy_section


def _energy(result: dict, steady_j: float, steady_s: float) -> dict:
    rank = {"rank": 0, "source": "nvml:total_energy_consumption", "absent": None, "resolution": {"unit_j": 1e-3},
            "devices": ["GPU 0"], "windows": {"steady": {"energy_j": steady_j, "seconds": steady_s, "windows": 3,
                                                         "short_windows": 0},
                                              "eval": {"energy_j": 50.0, "seconds": 1.2, "windows": 3,
                                                       "short_windows": 0}}}
    return energy_section([rank], result["timing"])


def _trace(top: str) -> dict:
    ops = [{"name": top, "calls": 4, "self_device_ms": 30.0, "self_cpu_ms": 1.0, "category": "convolution", "share": 0.6},
           {"name": "aten::add_", "calls": 9, "self_device_ms": 20.0, "self_cpu_ms": 1.0, "category": "elementwise",
            "share": 0.4}]
    shares = {"communication": 0.0, "optimizer": 0.0, "convolution": 0.6, "normalisation": 0.0, "copies": 0.0,
              "elementwise": 0.4, "other": 0.0}
    return {"file": "/x/trace.json", "steps_requested": 2, "activities": ["CPU", "CUDA"], "nsys_capture": False,
            "nsys_file": None, "time_basis": "device", "total_ms": 50.0, "top_operations": ops,
            "category_share": shares}


def test_energy_figures_and_cost_per_epoch_and_per_million_samples():
    res = make_result("cuda", samples_per_s=200.0, world_size=2, epochs=2)
    res["energy"] = _energy(res, steady_j=1600.0, steady_s=4.0)
    f = energy_figures(res, price_per_hour=3.6)        # 2 devices: 0.002 per second
    assert f["j_per_sample"] == pytest.approx(1600.0 / res["timing"]["measured_samples"])
    assert f["steady_power_w"] == pytest.approx(400.0)
    assert f["cost_per_m_samples"] == pytest.approx(0.002 * 1e6 / 200.0)
    epoch = res["history"][0]["epoch_s"] + res["history"][0]["eval_s"]
    assert f["cost_per_epoch"] == pytest.approx(0.002 * epoch)
    assert energy_figures(res, None)["cost_per_epoch"] is None


def test_site_price_is_optional_and_checked(tmp_path):
    site = Site.load(write_site(tmp_path / "ok.env", CUDA_PRICE_PER_HOUR="2.5"))
    assert site.price_per_hour("cuda") == 2.5 and site.price_per_hour("gaudi_lazy") is None
    assert not [p for p in site.problems(["cuda"]) if "PRICE" in p]
    bad = Site.load(write_site(tmp_path / "bad.env", GAUDI_PRICE_PER_HOUR="two euros"))
    assert any("GAUDI_PRICE_PER_HOUR must be the price of one device-hour, a number 0 or more" in p
               for p in bad.problems(["gaudi_eager"]))
    negative = Site.load(write_site(tmp_path / "neg.env", CUDA_PRICE_PER_HOUR="-2"))
    assert any("CUDA_PRICE_PER_HOUR must be the price of one device-hour, a number 0 or more (e.g. 2.50), got '-2'" in p
               for p in negative.problems(["cuda"]))
    res = make_result("gaudi_eager")
    with pytest.raises(UserError, match="GAUDI_PRICE_PER_HOUR"):
        apply_prices([load_run(write_result(tmp_path / "r", res))], tmp_path / "bad.env")


def test_report_shows_j_per_sample_cost_top_operations_and_the_energy_plot(tmp_path, capsys):
    results = tmp_path / "results"
    for backend, rate, joules, top in (("cuda", 400.0, 1000.0, "aten::cudnn_convolution"),
                                       ("gaudi_eager", 300.0, 900.0, "conv2d_fwd_bf16")):
        res = make_result(backend, samples_per_s=rate)
        res["energy"] = _energy(res, joules, 2.0)
        res["trace"] = _trace(top)
        write_result(results, res)
    site = write_site(tmp_path / "site.env", CUDA_PRICE_PER_HOUR="2.5", GAUDI_PRICE_PER_HOUR="1.8")
    code, out, err = run_main(main, [results, "--site", site, "--report-dir", tmp_path / "rep"], capsys)
    assert code == 0, err
    for label in ("J/sample", "samples/s/W", "steady W", "cost/epoch", "cost/M samples", "Top operations"):
        assert label in out
    assert "aten::cudnn_convolution 60.0%" in out and "conv2d_fwd_bf16 60.0%" in out
    assert (tmp_path / "rep" / "plots" / "energy_per_sample.png").stat().st_size > 0
    assert "J/sample" in (tmp_path / "rep" / "report.md").read_text()


def test_the_energy_table_shows_method_idle_baseline_and_net_beside_gross_j_per_sample(tmp_path, capsys):
    results = tmp_path / "results"
    res = make_result("cuda", samples_per_s=400.0)
    rank = {"rank": 0, "source": "nvml:power_usage integrated", "absent": None, "resolution": {}, "devices": ["GPU 0"],
            "method": "power_integration", "sample_hz": 20.0, "note": "nvml:total_energy_consumption reads 0: ...",
            "idle": {"idle_w": 100.0, "idle_s": 2.0, "cooldown_s": 0.0},
            "windows": {"steady": {"energy_j": 1000.0, "seconds": 2.0, "windows": 3, "short_windows": 0}}}
    res["energy"] = energy_section([rank], res["timing"])
    write_result(results, res)
    old = make_result("gaudi_eager", samples_per_s=300.0)   # results written before method and idle existed
    old["energy"] = {k: v for k, v in _energy(old, 900.0, 2.0).items()
                     if k not in ("method", "sample_hz", "note", "idle_w", "idle_s", "cooldown_s", "net_j_per_sample",
                                  "monitor_devices")}
    write_result(results, old)
    code, out, err = run_main(main, [results, "--report-dir", tmp_path / "rep"], capsys)
    assert code == 0, err
    table = (tmp_path / "rep" / "report.md").read_text().split("Energy")[1]
    header = next(line for line in table.splitlines() if "gross J/sample" in line)
    cells = [c.strip() for c in header.strip("|").split("|")]
    for label in ("gross J/sample", "net J/sample", "idle W", "method"):
        assert label in cells
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
            for line in table.splitlines() if line.startswith("|") and "---" not in line and line is not header}
    cuda = next(r for label, r in rows.items() if label.startswith("cuda"))
    gaudi = next(r for label, r in rows.items() if label.startswith("gaudi"))
    samples = res["timing"]["measured_samples"]
    assert cuda[cells.index("gross J/sample")] == f"{1000.0 / samples:.3f}"
    assert cuda[cells.index("net J/sample")] == f"{(1000.0 - 100.0 * 2.0) / samples:.3f}"
    assert cuda[cells.index("idle W")] == "100.0" and cuda[cells.index("method")] == "power 20 Hz (fallback)"
    assert gaudi[cells.index("net J/sample")] == "-" and gaudi[cells.index("method")] == "unknown"


def test_bad_price_stops_the_report_with_one_line(tmp_path):
    results = tmp_path / "results"
    write_result(results, make_result("cuda"))
    site = write_site(tmp_path / "site.env", CUDA_PRICE_PER_HOUR="cheap")
    proc = run(["python3", REPO / "compare_results.py", results, "--site", site])
    assert proc.returncode == 2 and "CUDA_PRICE_PER_HOUR must be the price of one device-hour, a number 0 or more" in proc.stderr
    assert "Traceback" not in proc.stderr
