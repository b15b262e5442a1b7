"""Signals that reach every process of a job (loader workers included), on a real single-node
Slurm cluster (the ``slurm_cluster`` fixture): the run checkpoints, the job is requeued and the
next start resumes to the end. The default 4 loader workers throughout.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/cluster/test_slurm_signals.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, SMALL_TRAINING, run, script_env, wait_for, write_site

from unetbench.data.prepare.api import prepare_synthetic

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
EPOCHS = 20   # long enough that the signal lands mid-run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slurm_signal_data")
    prepare_synthetic(out, num_images=40, crop=(32, 48), seed=11)
    return out




def _start(cluster, dataset, tmp_path) -> tuple[Path, str, Path]:
    run_dir = tmp_path / "run"
    proc = run([REPO / "run_benchmark.sh", "--backends", "cpu", "--site", write_site(tmp_path / "site.env"),
                "--run-dir", run_dir, "--data", dataset, "--epochs", str(EPOCHS),
                "--max-steps-per-epoch", "6", *SMALL_TRAINING, "--workers", "4"],
               env=script_env(SLURM_CONF=cluster.conf))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = dict(line.split("\t") for line in (run_dir / "jobs.tsv").read_text().splitlines())["cpu"]
    log = run_dir / "logs" / f"unetbench_cpu_{job}.out"
    wait_for(lambda: log.exists() and f"epoch 1/{EPOCHS}: step 2/6" in log.read_text(), 180, "training steps")
    return run_dir, job, log


def _requeued_then_finished(cluster, run_dir: Path, job: str, log: Path) -> str:
    cluster.wait_requeued(job)
    interrupted = json.loads((run_dir / "results" / "results_cpu.json").read_text())
    assert interrupted["status"] == "interrupted", interrupted["message"]
    assert (run_dir / "results" / "last_cpu.pth").exists()
    cluster.release(job)
    state = cluster.wait_jobs([job], timeout=240)[job]
    text = log.read_text()
    assert state["JobState"] == "COMPLETED" and state["Restarts"] == "1", text
    final = json.loads((run_dir / "results" / "results_cpu.json").read_text())
    assert final["status"] == "completed"
    assert [h["epoch"] for h in final["history"]] == list(range(1, EPOCHS + 1))
    assert final["timing"]["attempts"] == 2
    assert "Traceback" not in text and "exited unexpectedly" not in text, text
    assert "checkpoint saved to" in text and "resumed from" in text
    assert text.index("checkpoint saved to") < text.index("resumed from")
    return text


def test_scancel_warning_to_every_process_checkpoints_requeues_and_resumes(slurm_cluster, dataset, tmp_path):
    # --full: the batch shell and all its children (training, 4 loader workers, monitor) get USR1,
    # as they do when a site's --signal reaches the whole job.
    run_dir, job, log = _start(slurm_cluster, dataset, tmp_path)
    subprocess.run(["scancel", "--signal=USR1", "--full", job], env=slurm_cluster.env, check=True)
    text = _requeued_then_finished(slurm_cluster, run_dir, job, log)
    assert f"requeueing job {job} to resume (restart 1)" in text


def test_preemption_terminates_every_process_then_the_requeued_job_resumes(slurm_cluster, dataset, tmp_path):
    # Preemption with PreemptMode=REQUEUE (here by hand): SIGTERM to every process of the job,
    # SIGKILL KillWait seconds later, and Slurm itself requeues the job.
    run_dir, job, log = _start(slurm_cluster, dataset, tmp_path)
    subprocess.run(["scontrol", "requeue", job], env=slurm_cluster.env, check=True)
    text = _requeued_then_finished(slurm_cluster, run_dir, job, log)
    assert "interrupted by SIGTERM: checkpoint saved" in text
