"""Multi-device jobs on a real single-node Slurm: `run_benchmark.sh --nodes 1 --devices-per-node 2`
gives one job with two tasks, started by srun as two DDP ranks (CPU, gloo), one results file;
a USR1 to the batch shell reaches both ranks through srun, the job requeues and resumes.
The fixture's node has the machine's CPUs (two here) and each task asks for one.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, SMALL_TRAINING, run, script_env, wait_for, write_site

from unetbench.data.prepare.api import prepare_synthetic

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# SMALL_TRAINING is per device (batch 4): two ranks make a global batch of 8.
TWO_TASKS = ["--backends", "cpu", "--nodes", "1", "--devices-per-node", "2"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slurm_multi_data")
    prepare_synthetic(out, num_images=40, crop=(32, 48), seed=11)
    return out


@pytest.fixture
def cluster(slurm_cluster):
    if slurm_cluster.cpus < 2:
        pytest.skip("the test node needs two CPUs for a job of two one-CPU tasks")
    return slurm_cluster


def submit(cluster, tmp_path, dataset, *args) -> tuple[Path, dict[str, str]]:
    # 1500M per device: the job asks for 3000M on the node (MEM is scaled by the devices per node).
    site = write_site(tmp_path / "site.env", CPU_MEM="1500M")
    run_dir = tmp_path / "run"
    proc = run([REPO / "run_benchmark.sh", *TWO_TASKS, "--site", site, "--run-dir", run_dir, "--data", dataset,
                "--skip-verify", *args, *SMALL_TRAINING], env=script_env(SLURM_CONF=cluster.conf))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = dict(line.split("\t") for line in (run_dir / "jobs.tsv").read_text().splitlines())
    return run_dir, ids


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results" / "results_cpu_1x2.json").read_text())




def test_two_tasks_train_one_ddp_run_through_srun(cluster, dataset, tmp_path):
    run_dir, ids = submit(cluster, tmp_path, dataset, "--epochs", "2", "--max-steps-per-epoch", "3")
    job = ids["cpu_1x2"]  # jobs.tsv names each run: backend, nodes x devices
    assert cluster.job_state(job).get("NumTasks") == "2"
    states = cluster.wait_jobs(list(ids.values()), timeout=180)
    assert {n: states[j]["JobState"] for n, j in ids.items()} == {"cpu_1x2": "COMPLETED", "compare": "COMPLETED"}

    final = results(run_dir)
    assert final["status"] == "completed"
    dist = final["distributed"]
    assert (dist["world_size"], dist["nodes"], dist["devices_per_node"], dist["launcher"]) == (2, 1, 2, "srun")
    assert dist["global_batch"] == 8 and dist["replicas_identical"] is True
    assert len(final["history"]) == 2
    # Only rank 0 writes: one results file, one pair of checkpoints.
    assert sorted(p.name for p in (run_dir / "results").iterdir() if p.suffix in (".json", ".pth")) == \
        ["best_unet_cpu_1x2.pth", "last_cpu_1x2.pth", "results_cpu_1x2.json"]

    log = (run_dir / "logs" / f"unetbench_cpu_{job}.out").read_text()
    assert "2 tasks on 1 node(s)" in log
    assert "running: srun --kill-on-bad-exit=1 --ntasks=2 --cpu-bind=cores --cpus-per-task=1 " in log
    assert log.count("completed: results in") == 1   # rank 0 alone logs
    report = (run_dir / "report" / "report.md").read_text()
    assert "cpu_1x2" in report and "x2" in report


def test_usr1_reaches_both_ranks_through_srun_and_the_job_requeues_and_resumes(cluster, dataset, tmp_path):
    epochs = 30   # ~0.2 s each here: long enough to be signalled mid-run, short to finish after
    run_dir, ids = submit(cluster, tmp_path, dataset, "--epochs", str(epochs))
    job = ids["cpu_1x2"]  # jobs.tsv names each run: backend, nodes x devices
    log_path = run_dir / "logs" / f"unetbench_cpu_{job}.out"
    wait_for(lambda: log_path.exists() and f"epoch 2/{epochs}: train loss" in log_path.read_text(), 120, "two epochs")
    # As --signal=B:USR1@N delivers it: to the batch shell only; srun must pass it on to both ranks.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=cluster.env, check=True)
    cluster.wait_requeued(job, 90)
    interrupted = results(run_dir)
    assert interrupted["status"] == "interrupted"
    assert interrupted["distributed"]["world_size"] == 2
    stopped_at = len(interrupted["history"])
    assert 2 <= stopped_at < epochs
    cluster.release(job)

    states = cluster.wait_jobs([job, ids["compare"]], timeout=180)
    assert states[job]["JobState"] == "COMPLETED" and states[job]["Restarts"] == "1"
    final = results(run_dir)
    assert final["status"] == "completed" and final["distributed"]["replicas_identical"] is True
    assert [h["epoch"] for h in final["history"]] == list(range(1, epochs + 1))
    log = log_path.read_text()
    assert "received SIGUSR1; forwarding it to pid" in log and "(srun)" in log
    assert "interrupted by SIGUSR1: checkpoint saved" in log
    assert "training exited with status 3" in log
    assert f"requeueing job {job} to resume (restart 1)" in log
    assert f"resumed from {run_dir / 'results' / 'last_cpu_1x2.pth'}: epoch {stopped_at + 1}" in log
