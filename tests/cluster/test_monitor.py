"""The device monitor: stand-in nvidia-smi / hl-smi on PATH, rows normalised to the shared header."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import calls, fake_tool
from helpers import REPO

from unetbench.cluster import monitor
from unetbench.devices.spec import comma_rows

HEADER = "timestamp,device_index,utilization_pct,memory_used_mib,power_w,temperature_c"


def start(bin_dir: Path, out: Path, backend: str, **env_vars: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(REPO), **env_vars}
    return subprocess.Popen([sys.executable, "-m", "unetbench.cluster.monitor", "--backend", backend,
                             "--out", str(out), "--run-name", backend], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_rows(path: Path, n: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            rows = list(csv.DictReader(path.open()))
            if len(rows) >= n:
                return rows
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} rows in {path}")


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    return out


def test_nvidia_smi_rows_are_normalised_and_the_monitor_stops_on_sigterm(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "nvidia-smi", ["0, 97, 40211, 612.30, 64", "1, [N/A], 10, [N/A], 40"], every=0.2,
              log=bin_dir / "calls.log")
    proc = start(bin_dir, tmp_path / "res", "cuda")
    before = time.time()
    rows = wait_rows(tmp_path / "res" / "monitor_cuda.csv", 4)
    stop(proc)
    text = (tmp_path / "res" / "monitor_cuda.csv").read_text()
    assert text.splitlines()[0] == HEADER
    first, second = rows[0], rows[1]
    assert (first["device_index"], first["utilization_pct"], first["memory_used_mib"], first["power_w"],
            first["temperature_c"]) == ("0", "97", "40211", "612.30", "64")
    assert (second["device_index"], second["utilization_pct"], second["power_w"]) == ("1", "", "")
    assert before - 5 < float(first["timestamp"]) < time.time() + 1
    args = calls(bin_dir / "calls.log", "nvidia-smi")[0]
    assert "--query-gpu=index,utilization.gpu,memory.used,power.draw,temperature.gpu" in args
    assert "--format=csv,noheader,nounits" in args and "-l" in args
    # The stand-in was stopped with the monitor: nothing is left running that writes the file.
    size = (tmp_path / "res" / "monitor_cuda.csv").stat().st_size
    time.sleep(0.5)
    assert (tmp_path / "res" / "monitor_cuda.csv").stat().st_size == size


FOUR_GPUS = [f"{i}, 90, 1000, {100 * (i + 1)}.0, 50" for i in range(4)]   # nvidia-smi lists the whole node
NODE_LIST = ["GPU 0: NVIDIA H100 (UUID: GPU-0000aaaa)", "GPU 1: NVIDIA H100 (UUID: GPU-1111bbbb)",
             "  MIG 1g.10gb     Device  0: (UUID: MIG-1111cccc)",
             "GPU 2: NVIDIA H100 (UUID: GPU-2222dddd)", "GPU 3: NVIDIA H100 (UUID: GPU-3333eeee)"]


@pytest.mark.parametrize("visible, kept", [
    ("1,3", {"1", "3"}),                         # Slurm's indices
    ("GPU-3333eeee,GPU-1111", {"1", "3"}),       # UUIDs, full or a unique prefix, looked up in nvidia-smi -L
    ("MIG-1111cccc", {"1"}),                     # a MIG instance: its GPU
])
def test_nvidia_smi_rows_of_gpus_outside_the_job_are_not_recorded(tmp_path, visible, kept):
    """Without nvidia-ml-py the report integrates this CSV: a 2-GPU job on a 4-GPU node must not
    sum the node."""
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "nvidia-smi", FOUR_GPUS, every=0.2, answers={"-L": NODE_LIST})
    proc = start(bin_dir, tmp_path, "cuda", CUDA_VISIBLE_DEVICES=visible)
    rows = wait_rows(tmp_path / "monitor_cuda.csv", 2 * len(kept))
    out = stop(proc)
    assert {row["device_index"] for row in rows} == kept, out
    assert "CUDA_VISIBLE_DEVICES" in out


def test_a_cuda_visible_devices_naming_no_gpu_records_no_rows_rather_than_the_node(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "nvidia-smi", FOUR_GPUS, every=0.1, answers={"-L": NODE_LIST})
    proc = start(bin_dir, tmp_path, "cuda", CUDA_VISIBLE_DEVICES="GPU-99999999")
    wait_rows(tmp_path / "monitor_cuda.csv", 0)
    time.sleep(0.5)   # several samples of the four GPUs have come and gone
    out = stop(proc)
    assert list(csv.DictReader((tmp_path / "monitor_cuda.csv").open())) == [] and "no device" in out


def test_hl_smi_for_gaudi_and_a_second_run_appends(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "hl-smi", ["0, 88, 51200, 420.5, 51"], every=0.2, log=bin_dir / "calls.log")
    for run in (1, 2):  # a requeued job starts the monitor again on the same file
        rows = len(wait_rows(tmp_path / "monitor_gaudi_lazy.csv", 0)) if run == 2 else 0
        proc = start(bin_dir, tmp_path, "gaudi_lazy")
        wait_rows(tmp_path / "monitor_gaudi_lazy.csv", rows + 1)
        stop(proc)
    lines = (tmp_path / "monitor_gaudi_lazy.csv").read_text().splitlines()
    assert lines.count(HEADER) == 1 and lines[0] == HEADER
    assert len(lines) >= 3
    args = calls(bin_dir / "calls.log", "hl-smi")[0]
    assert args[:4] == ["-Q", "module_id,utilization.aip,memory.used,power.draw,temperature.aip", "-f", "csv,noheader,nounits"]


@pytest.mark.parametrize("backend", ["cuda", "gaudi_eager", "cpu", "auto"])
def test_without_a_tool_it_logs_one_line_and_exits_0(tmp_path, backend):
    proc = start(tmp_path / "empty", tmp_path, backend)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert len(out.strip().splitlines()) == 1, out
    assert not list(tmp_path.glob("monitor_*.csv"))


def test_normalise_skips_non_data_lines():
    rows = list(comma_rows(["index, utilization.gpu [%]", "", "0, 5 %, 100 MiB, 70.1 W, 30"]))
    assert monitor.normalise(rows[0], 1.0) is None
    assert monitor.normalise(rows[1], 1.0) is None
    assert monitor.normalise(rows[2], 2.5) == ["2.500", "0", "5", "100", "70.1", "30"]
    out = io.StringIO()
    assert monitor.record(["0, 1, 2, 3, 4", "garbage"], out, clock=lambda: 10.0) == 1
    assert out.getvalue() == "10.000,0,1,2,3,4\n"
