"""Outputs are never lost: one run per folder and run name, an unfinished checkpoint is not
started over silently, a completed results file outlives a failing re-run, killed writes leave
no temp files behind.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/training/test_run_outputs.py
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest
from helpers import REPO, SMALL_TRAINING, read_results, run_script

from unetbench.core.errors import UserError
from unetbench.core.settings import Settings
from unetbench.training.run_outputs import RunOutputs


def _status(path, status):
    path.write_text(json.dumps({"status": status}))


def test_a_second_run_into_the_same_folder_and_name_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom unetbench.training.run_outputs import RunOutputs\n"
                               f"RunOutputs({str(tmp_path)!r}, 'cpu').claim()\nprint('held', flush=True)\ntime.sleep(60)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=r"another run is writing results_cpu.json .*\(pid \d+ on "):
            RunOutputs(tmp_path, "cpu").claim()
        RunOutputs(tmp_path, "cuda").claim()   # another run name: its own lock
    finally:
        holder.kill()
        holder.wait()
    RunOutputs(tmp_path, "cpu").claim()        # the holder is gone: its lock went with it
    RunOutputs(tmp_path, "cpu").claim()        # and this process may claim twice


def test_temp_files_of_killed_writes_are_cleaned_on_the_next_run(tmp_path):
    stale = [tmp_path / ".last_cpu.pth.a1b2.tmp", tmp_path / ".results_cpu.json.x9.tmp",
             tmp_path / ".overlays_cpu.npz.c3.npz.tmp"]
    other = tmp_path / ".last_cuda.pth.zz.tmp"     # another run's: not ours to touch
    for path in [*stale, other]:
        path.write_bytes(b"half")
    RunOutputs(tmp_path, "cpu").claim()
    assert not any(p.exists() for p in stale) and other.exists()


def test_out_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "results").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        RunOutputs(tmp_path / "results", "cpu").claim()


@pytest.mark.parametrize("status,flags,refused", [
    ("interrupted", {}, True), ("failed", {}, True), ("running", {}, True), (None, {}, True),
    ("completed", {}, False),
    ("interrupted", {"auto_resume": True}, False), ("interrupted", {"resume": True}, False),
    ("interrupted", {"restart": True}, False),
])
def test_an_unfinished_checkpoint_needs_auto_resume_or_restart(tmp_path, status, flags, refused):
    (tmp_path / "last_cpu.pth").write_bytes(b"x")
    if status:
        _status(tmp_path / "results_cpu.json", status)
    outputs = RunOutputs(tmp_path, "cpu")
    if refused:
        with pytest.raises(UserError, match="unfinished run .*--auto-resume.*--restart"):
            outputs.refuse_unfinished(Settings(**flags))
    else:
        outputs.refuse_unfinished(Settings(**flags))


def test_a_completed_results_file_outlives_a_re_run_until_it_completes(tmp_path):
    _status(tmp_path / "results_cpu.json", "completed")
    outputs = RunOutputs(tmp_path, "cpu")
    outputs.write("running", {"status": "running"})
    outputs.write("failed", {"status": "failed"})
    assert json.loads((tmp_path / "results_cpu.json").read_text())["status"] == "completed"
    assert json.loads((tmp_path / "rerun_cpu.json").read_text())["status"] == "failed"
    assert outputs.status() == "failed"       # the latest run, for the next refusal check
    outputs.write("completed", {"status": "completed", "new": True})
    assert json.loads((tmp_path / "results_cpu.json").read_text())["new"] is True
    assert not (tmp_path / "rerun_cpu.json").exists()


def test_a_first_run_writes_every_state_into_its_results_file(tmp_path):
    outputs = RunOutputs(tmp_path, "cpu")
    outputs.write("running", {"status": "running"})
    outputs.write("failed", {"status": "failed"})
    assert json.loads((tmp_path / "results_cpu.json").read_text())["status"] == "failed"
    assert not (tmp_path / "rerun_cpu.json").exists()


@pytest.mark.slow
def test_a_failing_re_run_keeps_the_completed_results_and_their_checkpoints(tiny_splits, tmp_path):
    base = ["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
            "--max-steps-per-epoch", "2", *SMALL_TRAINING]
    assert run_script(base).returncode == 0
    completed = json.loads((tmp_path / "results_cpu.json").read_text())
    weights = {role: Path(path).read_bytes() for role, path in completed["checkpoints"].items()}
    failing = run_script([*base, "--lr", "1e30"])          # diverges: status failed
    assert failing.returncode == 2 and "Traceback" not in failing.stderr, failing.stderr
    kept = json.loads((tmp_path / "results_cpu.json").read_text())
    # The completed record stays, and still describes weights that exist: its own, kept aside
    # (the failed run wrote best_unet_cpu.pth and last_cpu.pth of its own).
    assert {k: v for k, v in kept.items() if k != "checkpoints"} == {k: v for k, v in completed.items()
                                                                      if k != "checkpoints"}
    assert kept["checkpoints"] == {role: str(tmp_path / f"kept_{Path(path).name}")
                                   for role, path in completed["checkpoints"].items()}
    assert {role: Path(path).read_bytes() for role, path in kept["checkpoints"].items()} == weights
    assert json.loads((tmp_path / "rerun_cpu.json").read_text())["status"] == "failed"
    assert not (tmp_path / "last_cpu.pth").exists(), "the failed run saved nothing: nothing unfinished to resume"
    again = run_script(base)                               # so a plain run starts, and its completion
    assert again.returncode == 0, again.stderr             # replaces the old record
    assert read_results(tmp_path)["status"] == "completed" and not (tmp_path / "rerun_cpu.json").exists()
    assert not list(tmp_path.glob("kept_*")), "the old record's checkpoints went with it"


def test_a_restarted_job_continues_after_a_requeue(monkeypatch):
    from unetbench.cluster.jobinfo import train_args
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    first = train_args("cpu", ["--restart"])[3:]
    assert "--restart" in first and "--auto-resume" not in first
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    again = train_args("cpu", ["--restart"])[3:]
    assert "--restart" not in again and "--auto-resume" in again


def test_a_file_system_without_flock_does_not_stop_the_run(tmp_path, monkeypatch, caplog):
    """Lustre mounted noflock (and some NFS setups) answer flock with ENOSYS: no lock is
    possible there, which is said, not mistaken for another run holding it."""
    import errno
    import fcntl

    def no_flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    stale = tmp_path / ".results_cpu.json.x9.tmp"
    stale.write_bytes(b"half")
    RunOutputs(tmp_path, "cpu").claim()
    assert "this file system has no flock" in caplog.text and not stale.exists()


@pytest.mark.slow
def test_the_launcher_claims_the_outputs_once_and_the_trainer_only_writes_into_them(tiny_splits, tmp_path, monkeypatch):
    from unetbench.training.launch import main
    from unetbench.training.stop_signals import StopRequest
    claims = []
    claim = RunOutputs.claim
    monkeypatch.setattr(RunOutputs, "claim", lambda self: claims.append(self.run_name) or claim(self))
    code = main(["--backend", "cpu", "--splits", str(tiny_splits), "--out", str(tmp_path), "--epochs", "1",
                 "--max-steps-per-epoch", "1", *SMALL_TRAINING], stop=StopRequest())
    assert code == 0 and claims == ["cpu"]
    assert read_results(tmp_path)["status"] == "completed"
