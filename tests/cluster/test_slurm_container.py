"""A CPU job "in a container" on a real single-node Slurm (the ``slurm_cluster`` fixture): submitted
by run_benchmark.sh with CPU_CONTAINER in site.env, its Python runs inside the stand-in
``apptainer`` (tests/cluster/standin_container/: records its arguments, checks image and binds,
forwards signals as Apptainer's starter does), or through the stand-in Pyxis ``srun`` (takes the
--container-* options off, then the real srun starts the task in the working folder); the
pre-time-limit USR1 reaches the training through it, the run checkpoints, the job requeues and
resumes to completion in the image.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/cluster/test_slurm_container.py
"""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from helpers import REPO, SMALL_TRAINING, run, script_env, wait_for, write_site

from unetbench.data.prepare.api import prepare_synthetic

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
STANDINS = REPO / "tests" / "cluster" / "standin_container"
EPOCHS = 20   # long enough that the signal lands mid-run




@pytest.mark.parametrize("runtime, image_name", [("apptainer", "pytorch.sif"), ("pyxis", "pytorch.sqsh")])
def test_a_job_in_a_container_gets_usr1_checkpoints_requeues_and_resumes(slurm_cluster, tmp_path, runtime, image_name):
    data = tmp_path / "data"
    prepare_synthetic(data, num_images=40, crop=(32, 48), seed=11)
    sif = tmp_path / "images" / image_name
    sif.parent.mkdir()
    sif.write_bytes(b"image stand-in")
    calls = tmp_path / "container_calls.jsonl"
    site = write_site(tmp_path / "site.env", CPU_CONTAINER=sif, CPU_CONTAINER_RUNTIME=runtime)
    run_dir = tmp_path / "run"
    env = script_env(STANDINS, SLURM_CONF=slurm_cluster.conf, STANDIN_CONTAINER_LOG=calls,
                     XDG_CACHE_HOME=tmp_path / "cache")
    proc = run([REPO / "run_benchmark.sh", "--backends", "cpu", "--site", site, "--run-dir", run_dir, "--data", data,
                "--epochs", str(EPOCHS), "--max-steps-per-epoch", "6", *SMALL_TRAINING],
               env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = dict(line.split("\t") for line in (run_dir / "jobs.tsv").read_text().splitlines())
    job = jobs["cpu"]
    log = run_dir / "logs" / f"unetbench_cpu_{job}.out"
    wait_for(lambda: log.exists() and f"epoch 1/{EPOCHS}: step 2/6" in log.read_text(), 180, "training steps")
    # The pre-time-limit warning as --signal=B:USR1@N delivers it: to the batch shell only.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=slurm_cluster.env, check=True)
    slurm_cluster.wait_requeued(job)
    interrupted = json.loads((run_dir / "results" / "results_cpu.json").read_text())
    assert interrupted["status"] == "interrupted", interrupted["message"]
    slurm_cluster.release(job)
    states = slurm_cluster.wait_jobs([job, jobs["compare"]], timeout=240)
    text = log.read_text()
    assert states[job]["JobState"] == "COMPLETED" and states[job]["Restarts"] == "1", text

    final = json.loads((run_dir / "results" / "results_cpu.json").read_text())
    assert final["status"] == "completed" and final["timing"]["attempts"] == 2
    assert [h["epoch"] for h in final["history"]] == list(range(1, EPOCHS + 1))
    digest = "sha256:" + hashlib.sha256(sif.read_bytes()).hexdigest()
    assert final["environment"]["container"] == {"runtime": runtime, "image": str(sif), "digest": digest}
    assert "received SIGUSR1; forwarding it to pid" in text and "interrupted by SIGUSR1: checkpoint saved" in text
    assert f"requeueing job {job} to resume (restart 1)" in text and "resumed from" in text
    assert text.count(f"container : {runtime} {sif} {digest}") == 2, "both runs of the job in the image"
    assert "Traceback" not in text
    # Both runs of the training started in the image, with the folders it needs bound.
    trainings = [c["argv"] for c in map(json.loads, calls.read_text().splitlines())
                 if str(REPO / "unet_cpu.py") in c["argv"]]
    assert len(trainings) == 2
    binds = sorted([str(REPO), str(tmp_path)])
    for argv in trainings:
        if runtime == "apptainer":
            assert argv[0] == "exec" and str(sif) in argv
            assert {*(f"--bind={b}" for b in binds), f"--pwd={tmp_path}"} <= set(argv)
        else:   # Pyxis: the options on the line of the srun that starts the one task
            assert {f"--container-image={sif}", f"--container-name=unetbench_{job}", "--ntasks=1",
                    f"--container-mounts={','.join(f'{b}:{b}' for b in binds)}",
                    f"--container-workdir={tmp_path}"} <= set(argv)
