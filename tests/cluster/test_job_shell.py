"""The batch-job library outside Slurm: signal forwarding to the background training, exit codes,
--auto-resume on the next run, and the device monitor stopped on every exit path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes import fake_tool
from helpers import REPO, SMALL_TRAINING, run, script_env, signal_mid_run

pytestmark = pytest.mark.slow  # every test runs a submit_*.sh job script


def fake_nvidia_smi(bin_dir: Path) -> Path:
    """nvidia-smi answering the job's device query once, then a monitor row every 0.2 s until killed."""
    fake_tool(bin_dir, "nvidia-smi", ["0, 50, 1000, 100.0, 40"], every=0.2,
              answers={"--query-gpu=index,name,driver_version,memory.total": ["0, Stand-in GPU, 1.0, 80000"]})
    return bin_dir


def test_usr1_is_forwarded_to_the_training_which_checkpoints_and_the_rerun_resumes(tiny_splits, tmp_path):
    out = tmp_path / "results"
    cmd = ["bash", str(REPO / "submit_cpu.sh"), "--splits", str(tiny_splits), "--out", str(out),
           "--epochs", "6", "--max-steps-per-epoch", "8", *SMALL_TRAINING]
    env = script_env(UNETBENCH_SITE="none")
    log = tmp_path / "job.log"
    assert signal_mid_run(cmd, env, tmp_path, log, "epoch 1/6: step 2/") == 3, log.read_text()
    text = log.read_text()
    assert "received SIGUSR1; forwarding it to pid" in text
    assert "training exited with status 3" in text
    assert "interrupted; checkpoint saved. Run again (it passes --auto-resume) to continue." in text
    assert (out / "last_cpu.pth").exists()

    again = run(cmd, env=env, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed from" in again.stdout
    assert '"status": "completed"' in (out / "results_cpu.json").read_text()


def test_failure_exit_code_passes_through_and_the_monitor_is_stopped(tmp_path):
    # A cuda job on a machine without CUDA: the header lists the (stand-in) GPU, the monitor
    # samples it, the training exits 2, and the monitor is gone when the job script returns.
    bin_dir = fake_nvidia_smi(tmp_path / "bin")
    env = script_env(bin_dir, UNETBENCH_SITE="none")
    proc = run(["bash", REPO / "submit_cuda.sh", "--splits", tmp_path / "none.json", "--out", tmp_path / "res"],
               env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "0, Stand-in GPU, 1.0, 80000" in proc.stdout
    assert "training exited with status 2" in proc.stdout
    csv = tmp_path / "res" / "monitor_cuda.csv"
    assert csv.read_text().startswith("timestamp,device_index,utilization_pct,memory_used_mib,power_w,temperature_c\n")
    size = csv.stat().st_size
    time.sleep(0.6)
    assert csv.stat().st_size == size, "the monitor kept writing after the job ended"


def test_gaudi_modes_set_pt_hpu_lazy_mode_explicitly(tmp_path):
    env = script_env(UNETBENCH_SITE="none", PT_HPU_LAZY_MODE="7")
    for backend, mode in (("gaudi_lazy", "1"), ("gaudi_eager", "0")):
        proc = run(["bash", REPO / f"submit_{backend}.sh", "--splits", tmp_path / "none.json", "--out", tmp_path],
                   env=env, cwd=tmp_path, timeout=120)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"PT_HPU_LAZY_MODE={mode} " in proc.stdout
        assert "hl-smi not found on this node" in proc.stdout


def test_site_setup_runs_in_the_job_and_a_failing_setup_stops_it(tmp_path):
    site = tmp_path / "site.env"
    site.write_text("COMPARE_SETUP='export UNETBENCH_TEST_MARK=activated; echo setup ran'\n"
                    "PREPARE_SETUP='false'\n")
    env = script_env(UNETBENCH_SITE=site)
    proc = run(["bash", REPO / "submit_compare.sh", tmp_path / "nothing"], env=env, cwd=tmp_path, timeout=120)
    assert "setup ran" in proc.stdout and "environment: COMPARE_SETUP from" in proc.stdout
    assert proc.returncode == 2     # compare_results.py: no valid results
    proc = run(["bash", REPO / "submit_prepare.sh", "--synthetic"], env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "PREPARE_SETUP failed" in proc.stderr
