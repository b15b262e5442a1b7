"""run_benchmark.sh against a real single-node Slurm (slurmctld + slurmd + munged, started by
the ``slurm_cluster`` fixture): the whole chain as jobs, a failing backend, signal-and-requeue,
and sbatch refusing a job. Under CI these must run (a missing Slurm fails, see conftest.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, SMALL_TRAINING, run, script_env, wait_for, write_site

from unetbench.data.prepare.api import prepare_synthetic

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slurm_data")
    prepare_synthetic(out, num_images=40, crop=(32, 48), seed=11)
    return out


def bench(cluster, args, **kw):
    return run([REPO / "run_benchmark.sh", *args], env=script_env(**{"SLURM_CONF": cluster.conf}), **kw)


def job_ids(run_dir: Path) -> dict[str, str]:
    return dict(line.split("\t") for line in (run_dir / "jobs.tsv").read_text().splitlines())


def log_of(run_dir: Path, name: str, job_id: str) -> str:
    return (run_dir / "logs" / f"unetbench_{name}_{job_id}.out").read_text()


def results(run_dir: Path, backend: str) -> dict:
    return json.loads((run_dir / "results" / f"results_{backend}.json").read_text())


def test_prepare_train_and_compare_run_as_jobs_and_the_report_appears(slurm_cluster, tmp_path):
    site = write_site(tmp_path / "site.env", COMPARE_PARTITION="batch")
    run_dir, data = tmp_path / "run", tmp_path / "data"
    proc = bench(slurm_cluster, ["--backends", "cpu", "--site", site, "--run-dir", run_dir, "--data", data,
                                 "--prepare-job", "--synthetic", "--num-images", "40", "--crop", "32x48",
                                 "--epochs", "2", "--max-steps-per-epoch", "3", *SMALL_TRAINING])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = job_ids(run_dir)
    assert list(ids) == ["prepare", "cpu", "compare"]
    assert f"squeue -j {ids['prepare']},{ids['cpu']},{ids['compare']}" in proc.stdout
    assert str(run_dir / "report" / "report.html") in proc.stdout  # where the report will be

    states = slurm_cluster.wait_jobs(list(ids.values()), timeout=240)
    assert {n: states[j]["JobState"] for n, j in ids.items()} == dict.fromkeys(ids, "COMPLETED")
    assert states[ids["cpu"]]["Dependency"] in ("(null)", "")
    assert states[ids["compare"]]["Partition"] == "batch"
    assert (data / "dataset_splits.json").exists()
    assert results(run_dir, "cpu")["status"] == "completed"
    assert len(results(run_dir, "cpu")["history"]) == 2
    report = (run_dir / "report" / "report.md").read_text()
    assert "cpu" in report
    assert (run_dir / "report" / "summary.csv").exists()
    log = log_of(run_dir, "cpu", ids["cpu"])
    assert f"job       : {ids['cpu']} (unetbench_cpu) restart 0" in log
    assert "node      : " in log and "torch" in log
    assert "--auto-resume" in log


def test_a_failing_backend_still_gets_a_report(slurm_cluster, dataset, tmp_path):
    # The test node has a pretend GPU, so the cuda job starts, finds no CUDA device and fails.
    site = write_site(tmp_path / "site.env")
    run_dir = tmp_path / "run"
    proc = bench(slurm_cluster, ["--backends", "cuda,cpu", "--site", site, "--run-dir", run_dir, "--data", dataset,
                                 "--epochs", "1", "--max-steps-per-epoch", "2", *SMALL_TRAINING])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = job_ids(run_dir)
    states = slurm_cluster.wait_jobs(list(ids.values()), timeout=240)
    assert states[ids["cuda"]]["JobState"] == "FAILED"
    assert states[ids["cuda"]]["ExitCode"] == "2:0"
    assert states[ids["cpu"]]["JobState"] == "COMPLETED"
    assert states[ids["compare"]]["JobState"] == "COMPLETED"   # afterany: it ran anyway
    assert "no CUDA device visible" in log_of(run_dir, "cuda", ids["cuda"])
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    text = json.dumps(summary)
    assert "cuda" in text and "missing" in text
    report = (run_dir / "report" / "report.md").read_text()
    assert "cuda" in report and "missing" in report




def test_a_signalled_job_checkpoints_requeues_resumes_and_finishes(slurm_cluster, dataset, tmp_path):
    site = write_site(tmp_path / "site.env")
    run_dir = tmp_path / "run"
    epochs = 20  # long enough (a few seconds) that the signal lands mid-run, not after the end
    proc = bench(slurm_cluster, ["--backends", "cpu", "--site", site, "--run-dir", run_dir, "--data", dataset,
                                 "--epochs", str(epochs), "--max-steps-per-epoch", "6", *SMALL_TRAINING])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = job_ids(run_dir)
    job = ids["cpu"]
    log_path = run_dir / "logs" / f"unetbench_cpu_{job}.out"
    # Mid-run: the first epoch has taken steps. Then the pre-time-limit warning, exactly as
    # --signal=B:USR1@N delivers it: USR1 to the batch shell only.
    wait_for(lambda: log_path.exists() and f"epoch 1/{epochs}: step 2/6" in log_path.read_text(), 180, "training steps")
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=slurm_cluster.env, check=True)
    # Slurm holds a requeued job for a while (BeginTime); release it now to keep the test short.
    slurm_cluster.wait_requeued(job)
    interrupted = results(run_dir, "cpu")
    assert interrupted["status"] == "interrupted"
    assert (run_dir / "results" / "last_cpu.pth").exists()
    slurm_cluster.release(job)

    states = slurm_cluster.wait_jobs([job, ids["compare"]], timeout=240)
    assert states[job]["JobState"] == "COMPLETED" and states[job]["Restarts"] == "1"
    assert states[ids["compare"]]["JobState"] == "COMPLETED"
    final = results(run_dir, "cpu")
    assert final["status"] == "completed"
    assert len(final["history"]) == epochs
    assert [h["epoch"] for h in final["history"]] == list(range(1, epochs + 1))
    log = log_path.read_text()   # --open-mode=append: both runs of the job in one log
    assert "received SIGUSR1; forwarding it to pid" in log
    assert f"requeueing job {job} to resume (restart 1)" in log
    assert f"job       : {job} (unetbench_cpu) restart 1" in log
    assert "resumed from" in log
    assert log.index("requeueing job") < log.index("restart 1") < log.index("resumed from")


def test_scancel_stops_without_requeue(slurm_cluster, dataset, tmp_path):
    site = write_site(tmp_path / "site.env")
    run_dir = tmp_path / "run"
    # 20 epochs: still running when cancelled. The default 4 loader workers: scancel signals the
    # whole job, workers included, and the run must still checkpoint (they ignore the signal).
    proc = bench(slurm_cluster, ["--backends", "cpu", "--site", site, "--run-dir", run_dir, "--data", dataset,
                                 "--epochs", "20", "--max-steps-per-epoch", "6", *SMALL_TRAINING, "--workers", "4"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = job_ids(run_dir)
    log_path = run_dir / "logs" / f"unetbench_cpu_{ids['cpu']}.out"
    wait_for(lambda: log_path.exists() and "epoch 1/20: step 2/6" in log_path.read_text(), 180, "training steps")
    subprocess.run(["scancel", ids["cpu"]], env=slurm_cluster.env, check=True)
    states = slurm_cluster.wait_jobs(list(ids.values()), timeout=120)
    assert states[ids["cpu"]]["JobState"] == "CANCELLED" and states[ids["cpu"]]["Restarts"] == "0"
    assert results(run_dir, "cpu")["status"] == "interrupted"
    assert "interrupted by SIGTERM (scancel, time limit or preemption): not requeueing" in log_path.read_text()
    assert (run_dir / "results" / "last_cpu.pth").exists()
    assert "Traceback" not in log_path.read_text()
    # The comparison still ran (afterany); with no complete run it exits 2 (EXIT_USAGE).
    assert states[ids["compare"]]["ExitCode"] == "2:0"
    assert "interrupted" in log_of(run_dir, "compare", ids["compare"])


def test_sbatch_refusing_a_job_cancels_the_jobs_already_submitted(slurm_cluster, tmp_path):
    site = write_site(tmp_path / "site.env", COMPARE_PARTITION="nosuchpartition")
    run_dir = tmp_path / "run"
    proc = bench(slurm_cluster, ["--backends", "cpu", "--site", site, "--run-dir", run_dir, "--data", tmp_path / "d",
                                 "--prepare-job", "--synthetic", "--num-images", "20", "--crop", "32x48",
                                 *SMALL_TRAINING])
    assert proc.returncode == 2
    assert "sbatch refused the compare job" in proc.stderr
    assert "invalid partition" in proc.stderr.lower()
    ids = job_ids(run_dir)
    assert list(ids) == ["prepare", "cpu"]
    states = slurm_cluster.wait_jobs(list(ids.values()), timeout=60)
    assert {s["JobState"] for s in states.values()} == {"CANCELLED"}
