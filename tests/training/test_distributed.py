"""Two CPU ranks with gloo: launched by torchrun and srun-style, identical weights, each
validation sample once, one results file; launch errors end quickly with a clear message."""

import os
import shutil
import subprocess
import sys

import pytest
from helpers import REPO, SMALL_TRAINING, read_results

from unetbench.core.errors import UserError
from unetbench.devices.base import check_local_rank
from unetbench.training.distributed import DistContext, first_host

TRAIN = ["unet_cpu.py", "--epochs", "2", "--max-steps-per-epoch", "3", *SMALL_TRAINING]


def _check_two_rank_results(out):
    results = read_results(out)
    assert results["status"] == "completed"
    d = results["distributed"]
    assert d["world_size"] == 2 and d["global_batch"] == 8 and d["backend"] == "gloo"
    assert d["replicas_identical"] is True
    counts = results["dataset"]["counts"]
    assert all(h["val_samples"] == counts["val"] for h in results["history"])  # each sample once
    assert results["timing"]["measured_samples"] == results["timing"]["measured_steps"] * 8
    # Hidden files aside: OUT/.lock_<run> is the run's lock (unetbench/training/run_outputs.py), one for both ranks.
    written = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    assert (out / ".lock_cpu").is_file()
    assert written == ["best_unet_cpu.pth", "last_cpu.pth", "overlays_cpu.npz", "results_cpu.json"]  # rank 0 alone writes


@pytest.mark.slow
def test_torchrun_two_ranks(tiny_splits, tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([torchrun, "--nproc_per_node=2", *TRAIN, "--splits", str(tiny_splits), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("completed: results in") == 1  # only rank 0 logs
    _check_two_rank_results(tmp_path)


def _srun_style(rank, args, job_id, tasks=2, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update({"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NTASKS": str(tasks),
                "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "localhost", "SLURM_JOB_ID": str(job_id),
                "PYTHONPATH": str(REPO), **(extra_env or {})})
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_srun_style_environment_two_ranks(tiny_splits, tmp_path):
    args = [*TRAIN, "--splits", tiny_splits, "--out", tmp_path]
    procs = [_srun_style(rank, args, job_id=4242) for rank in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    _check_two_rank_results(tmp_path)
    assert read_results(tmp_path)["distributed"]["launcher"] == "srun"


@pytest.mark.slow
def test_mismatched_dataset_between_ranks_fails_on_every_rank(tiny_splits, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for f in tiny_splits.parent.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "dataset_splits.json").write_text(tiny_splits.read_text().replace('"seed": 7', '"seed": 8'))
    procs = [_srun_style(rank, [*TRAIN, "--splits", splits, "--out", tmp_path / "r"], job_id=4343)
             for rank, splits in enumerate([tiny_splits, other / "dataset_splits.json"])]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [2, 2], outputs
    assert "rank(s) 1 see a different dataset split file" in outputs[0][1]
    assert "Traceback" not in outputs[0][1]


@pytest.mark.slow
def test_world_size_larger_than_the_launch_times_out_with_a_message(tiny_splits, tmp_path):
    proc = _srun_style(0, [*TRAIN, "--splits", tiny_splits, "--out", tmp_path], job_id=4444, tasks=3,
                       extra_env={"UNETBENCH_DIST_TIMEOUT": "8"})
    # only one of three processes is started: rank 0 must give up, not hang
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "did not form within 8 s" in err and "3 processes were expected" in err
    assert not (tmp_path / "results_cpu.json").exists()


def test_launch_environment_parsing():
    assert DistContext.from_environment({}).world_size == 1
    assert DistContext.from_environment({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}).world_size == 1
    ctx = DistContext.from_environment({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                                        "MASTER_ADDR": "n1", "MASTER_PORT": "29500"})
    assert (ctx.rank, ctx.local_rank, ctx.world_size, ctx.nodes, ctx.launcher) == (3, 1, 4, 2, "torchrun")
    with pytest.raises(UserError, match="outside the world size"):
        DistContext.from_environment({"RANK": "4", "LOCAL_RANK": "0", "WORLD_SIZE": "4"})
    with pytest.raises(UserError, match="not a valid integer"):
        DistContext.from_environment({"SLURM_NTASKS": "two", "SLURM_PROCID": "0"})


def test_first_host_of_slurm_node_lists():
    assert first_host("gpu[03-05,09],cpu1") == "gpu03"
    assert first_host("node7") == "node7"
    assert first_host("a1,b2") == "a1"


def test_more_processes_than_devices_is_refused():
    check_local_rank(3, 4, "GPU")
    with pytest.raises(UserError, match="only 4 visible"):
        check_local_rank(4, 4, "GPU")


@pytest.mark.slow
def test_two_ranks_interrupted_mid_epoch_resume_to_the_straight_run(learn_splits, tmp_path):
    """Rank 0 saves the partial epoch for both ranks; after resume every sample counts once."""
    import signal

    import torch
    args = ["unet_cpu.py", "--splits", learn_splits, "--epochs", "2", *SMALL_TRAINING, "--batch-size", "2"]
    straight = [_srun_style(rank, [*args, "--out", tmp_path / "a"], job_id=5001) for rank in range(2)]
    outputs = [p.communicate(timeout=300) for p in straight]
    assert [p.returncode for p in straight] == [0, 0], [err[-2000:] for _, err in outputs]

    procs = [_srun_style(rank, [*args, "--out", tmp_path / "b"], job_id=5002) for rank in range(2)]
    for line in procs[0].stdout:  # ranks agree to stop at the next 10-step check: step 10 of 21
        if line.startswith("epoch 1/2: step 3/"):
            for p in procs:
                p.send_signal(signal.SIGUSR1)
            break
    assert [p.communicate(timeout=300) and p.returncode for p in procs] == [3, 3]
    assert "epoch 1 step 10" in read_results(tmp_path / "b")["message"]
    resumed = [_srun_style(rank, [*args, "--out", tmp_path / "b", "--resume"], job_id=5003) for rank in range(2)]
    outputs = [p.communicate(timeout=300) for p in resumed]
    assert [p.returncode for p in resumed] == [0, 0], [err[-2000:] for _, err in outputs]

    a, b = read_results(tmp_path / "a"), read_results(tmp_path / "b")
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in b["history"]])
    assert [h["train_miou"] for h in a["history"]] == pytest.approx([h["train_miou"] for h in b["history"]])
    wa = torch.load(tmp_path / "a" / "last_cpu.pth", weights_only=True)["model"]
    wb = torch.load(tmp_path / "b" / "last_cpu.pth", weights_only=True)["model"]
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], msg=name)


_EXIT_REPORTER = '''
import atexit, gc, sys
gc.disable()  # cycles survive to the exit, as they may when the collector has not run lately

def _report():
    import torch.distributed as dist
    alive = sum(type(o).__name__ == "DistributedDataParallel" for o in gc.get_objects())
    print(f"at exit: process group initialised={dist.is_initialized()} DDP units alive={alive}", file=sys.stderr)

atexit.register(_report)
'''


@pytest.mark.slow
def test_process_group_is_destroyed_with_nothing_holding_it_before_python_exits(tiny_splits, tmp_path):
    """Gloo's worker threads release finished work after wait() returns; one that does so while
    Python finalises cannot take the GIL and aborts the rank at exit (a core dump showed it). So
    by the time Python exits, the group is destroyed and no DDP unit (which holds it) is alive,
    even when the trainer sits in a reference cycle the collector has not reached."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_EXIT_REPORTER)
    args = [*TRAIN, "--splits", tiny_splits, "--out", tmp_path / "out"]
    procs = [_srun_style(rank, args, job_id=4545, extra_env={"PYTHONPATH": f"{hooks}{os.pathsep}{REPO}"})
             for rank in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    for _, err in outputs:
        assert "at exit: process group initialised=False DDP units alive=0" in err, err[-2000:]
