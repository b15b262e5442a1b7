"""A new device is one folder: the stand-in NPU (tests/devices/standin_npu), brought in from
outside the package with UNETBENCH_DEVICE_PACKAGES, goes through every consumer unchanged.

Generated scripts, run_benchmark.sh's planning, site.env checks and the preflight read its
spec; the training loop drives its device module (synchronise, events, RNG, peak memory) and
its energy counter; the monitor samples its tool and keeps the job's devices only; the job
header asks its tool and software; the report compares it. Nothing outside its folder names it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import fake_tool
from helpers import REPO, SMALL_TRAINING

HERE = Path(__file__).parent


def npu_env(bin_dir: Path | None = None, **extra) -> dict:
    """The environment of a site that keeps the NPU device outside the package."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {**os.environ, "UNETBENCH_DEVICE_PACKAGES": "standin_npu",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
            "PATH": f"{bin_dir}{os.pathsep}{path}" if bin_dir else path, **extra}


def python(args, env, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def npu_smi(bin_dir: Path) -> Path:
    """The NPU's tool: two devices on the node (the job has device 0), driver, description."""
    return fake_tool(bin_dir, "npu-smi", lines=["0, 71, 2048, 150.5, 45", "1, 3, 10, 20.0, 30"],
                     answers={"driver": ["0.1-standin"], "describe": ["0, Stand-in NPU, 0.1-standin, 16384 MiB"]})


LOGIN_NODE_VIEW = """
import json, sys
from unetbench.cluster import scaffold, plan, preflight, submit_options
from unetbench.cluster.site_settings import Site
from unetbench.core.registry import BACKENDS
files = {p.name: content for p, (content, _) in scaffold.generated_files().items()}
site = Site.load(sys.argv[1])
print(json.dumps({
    "backends": list(BACKENDS),
    "submit_npu": files.get("submit_npu.sh", ""), "unet_npu": files.get("unet_npu.py", ""),
    "registry_sh": files["registry.sh"],
    "parsed": plan.parse_backends("npu,cpu"), "usage": submit_options.usage(),
    "site_problems": site.problems(["npu"]),
    "torch_loaded": "torch" in sys.modules,
}))
"""


def test_the_login_node_tools_take_a_device_folder_as_it_is(tmp_path):
    site = tmp_path / "site.env"
    site.write_text("NPU_PARTITION=x\nNPU_ACCOUNT=\nNPU_QOS=\nNPU_CPUS=2\nNPU_MEM=4G\nNPU_TIME=0:10:00\nNPU_SETUP=\n")
    view = json.loads(python(["-c", LOGIN_NODE_VIEW, site], npu_env()).stdout)
    assert view["backends"].index("npu") < view["backends"].index("cpu")        # its spec's order
    assert "train_job npu" in view["submit_npu"] and "#SBATCH --gres=npu:1" in view["submit_npu"]
    assert 'run_backend("npu")' in view["unet_npu"]
    assert 'npu) echo "NPU"' in view["registry_sh"] and 'npu) echo "NPU_STANDIN_MODE=graph"' in view["registry_sh"]
    assert view["parsed"] == ["npu", "cpu"] and "npu" in view["usage"]
    assert view["site_problems"] == ["NPU_GRES is not set (set it, empty if your cluster does not use it)"]
    assert view["torch_loaded"] is False


def test_a_device_package_that_cannot_be_imported_is_named():
    proc = subprocess.run([sys.executable, "-c", "import unetbench.core.registry"], capture_output=True, text=True,
                          cwd=REPO, env=npu_env(UNETBENCH_DEVICE_PACKAGES="standin_nowhere"))
    assert proc.returncode != 0 and "standin_nowhere" in proc.stderr and "UNETBENCH_DEVICE_PACKAGES" in proc.stderr


@pytest.mark.slow
def test_the_new_device_trains_is_metered_monitored_and_reported(tiny_splits, tmp_path):
    bin_dir, out = tmp_path / "bin", tmp_path / "results"
    npu_smi(bin_dir)
    calls = tmp_path / "npu_calls.json"
    env = npu_env(bin_dir, NPU_STANDIN_CALLS=str(calls), NPU_VISIBLE_DEVICES="0")

    # The loop: the entry sets the device's variable before torch, the backend drives torch.npu.
    python(["-m", "unetbench.launch", "--backend", "npu", "--splits", tiny_splits, "--out", out,
            "--epochs", "2", "--max-steps-per-epoch", "3", *SMALL_TRAINING], env)
    results = json.loads((out / "results_npu.json").read_text())
    assert results["status"] == "completed" and results["backend"] == "npu"
    assert results["environment"]["device_name"] == "Stand-in NPU"
    assert results["environment"]["driver"] == "0.1-standin"              # asked of its tool
    asked = json.loads(calls.read_text())
    # Every timed boundary synchronised the device; step times came from its events; the
    # checkpoint saved its RNG state; peak memory was reset for the measured phase.
    assert asked["synchronize"] >= 4 and asked["Event"] >= 6
    assert asked["get_rng_state"] >= 1 and asked["reset_peak_memory_stats"] >= 1
    assert results["memory"]["peak_allocated_gb"] == pytest.approx((3 << 20) / 1e9, rel=1e-3)

    # The energy meter: its counter, at the timer's boundaries.
    energy = results["energy"]
    assert energy["source"] == "npu-standin:energy_counter" and energy["steady"]["energy_j"] > 0

    # The monitor samples its tool and keeps the job's device only.
    python(["-m", "unetbench.monitor", "--backend", "npu", "--out", out, "--run-name", "npu"], env)
    rows = list(csv.DictReader((out / "monitor_npu.csv").open()))
    assert [(r["device_index"], r["power_w"]) for r in rows] == [("0", "150.5")]

    # The job header: its variables, its software, its tool's description.
    header = python(["-m", "unetbench.cluster.jobinfo", "header", "npu"], env).stdout
    assert "npu-runtime 0.1 (stand-in)" in header and "NPU_VISIBLE_DEVICES=0" in header
    assert "0, Stand-in NPU, 0.1-standin, 16384 MiB" in header

    # The report compares it like any backend.
    report = tmp_path / "report"
    printed = python(["compare_results.py", out, "--report-dir", report], env).stdout
    assert "npu" in printed
    summary = json.loads((report / "summary.json").read_text())
    assert [g["group"] for g in summary["groups"]] == ["npu/parity"]
    assert (report / "report.html").stat().st_size > 10_000
