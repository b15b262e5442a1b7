"""The job shell's stop reaches the training where a signal cannot: through nsys, which does not
forward SIGUSR1, and before the training has installed its handlers (the job starts it with the
stop signals ignored, and writes the stop to UNETBENCH_STOP_FILE before forwarding a signal).

    python -m pytest tests/cluster/test_job_stop_file.py
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, SMALL_TRAINING, script_env

from unetbench.training.stop_signals import STOP_FILE_VAR, StopRequest

# The training's side, as entry.py does it: handlers installed when GATE exists (the imports
# before it take seconds), then a step loop that checks the request; exit 3 like a stopped run.
TRAINING = f"""
import os, sys, time
sys.path.insert(0, {str(REPO)!r})
from unetbench.training.stop_signals import StopRequest
print("started", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
stop = StopRequest.install()
print("installed", flush=True)
while not stop.requested:
    time.sleep(0.02)
print("stopped by", stop.signal_name, flush=True)
sys.exit(3)
"""


def _job(tmp_path: Path, wrapper: list[str], jobs: list) -> tuple[subprocess.Popen, Path, Path]:
    """A batch shell that runs TRAINING the way train_job does: shielded, behind ``wrapper``."""
    gate, log = tmp_path / "gate", tmp_path / "job.log"
    script = tmp_path / "job.sh"
    script.write_text(f"""set -euo pipefail
source {shlex.quote(str(REPO / 'scripts' / 'lib_job.sh'))}
_ub_install_traps
export UNETBENCH_STOP_FILE={shlex.quote(str(tmp_path / 'stop'))}
job_run "${{UB_SHIELD[@]}}" {' '.join(map(shlex.quote, wrapper))} {shlex.quote(sys.executable)} -c {shlex.quote(TRAINING)} {shlex.quote(str(gate))}
exit "$UB_RC"
""")
    with open(log, "w") as fh:   # a session of its own: a failed test leaves nothing running
        proc = subprocess.Popen(["bash", str(script)], stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path,
                                start_new_session=True)
    jobs.append(proc)
    return proc, gate, log


@pytest.fixture
def jobs():
    """The job shells a test started; any still running at its end (a failed test) are ended."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for(log: Path, text: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60  # a hang guard only: nothing is timed
    while text not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)


def test_usr1_reaches_a_training_behind_a_wrapper_that_does_not_forward_it(tmp_path, jobs):
    nsys = tmp_path / "nsys"   # stand-in: ignores SIGUSR1 and runs the program as its child
    nsys.write_text('#!/bin/bash\ntrap "" USR1\nshift\n"$@" &\nchild=$!\nwhile ! wait "$child"; do kill -0 "$child" 2>/dev/null || break; done\n'
                    'wait "$child"\n')
    nsys.chmod(0o755)
    proc, gate, log = _job(tmp_path, [str(nsys), "profile"], jobs)
    gate.touch()
    _wait_for(log, "installed", proc)
    os.kill(proc.pid, signal.SIGUSR1)            # to the batch shell, as --signal=B:USR1 does
    assert proc.wait(timeout=60) == 3, log.read_text()
    assert "stopped by SIGUSR1" in log.read_text()


def test_usr1_before_the_handlers_exist_is_kept_not_fatal(tmp_path, jobs):
    proc, gate, log = _job(tmp_path, [], jobs)
    _wait_for(log, "started", proc)              # the training runs, its handlers not yet installed
    os.kill(proc.pid, signal.SIGUSR1)
    _wait_for(log, "forwarding it to pid", proc)
    gate.touch()                                 # ... and installs them only now
    assert proc.wait(timeout=60) == 3, log.read_text()
    assert "stopped by SIGUSR1" in log.read_text()


def test_a_stop_written_before_install_counts_at_install_and_later_writes_at_the_next_check(tmp_path, monkeypatch):
    stop_file = tmp_path / "stop"
    stop_file.write_text("TERM\n")
    monkeypatch.setenv(STOP_FILE_VAR, str(stop_file))
    early = StopRequest.install()
    early.restore()
    assert early.signal_name == "SIGTERM"
    assert STOP_FILE_VAR not in os.environ, "the file is this process's, not its children's"

    stop_file.unlink()
    monkeypatch.setenv(STOP_FILE_VAR, str(stop_file))
    later = StopRequest.install()
    later.restore()
    assert not later.requested
    stop_file.write_text("not a signal\n")
    assert not later.requested
    stop_file.write_text("USR1\n")
    assert later.requested and later.signal_name == "SIGUSR1"


def test_a_stop_sent_to_every_process_during_set_up_is_kept_for_the_training(tiny_splits, tmp_path, jobs):
    """scancel --signal=USR1 (no --batch) signals every process of the job: a set-up helper
    killed by it made the job exit 2, the bad-input code. Now the training acts on it."""
    python = tmp_path / "python"   # the site's python; while the job resolves its flags, the stop comes
    python.write_text(f'#!/bin/bash\ncase " $* " in *" train-args "*) kill -s USR1 0 ;; esac\n'
                      f'exec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    out = tmp_path / "results"
    with open(tmp_path / "job.log", "w") as fh:
        proc = subprocess.Popen(["bash", str(REPO / "submit_cpu.sh"), "--splits", str(tiny_splits), "--out", str(out),
                                 "--epochs", "1", *SMALL_TRAINING], stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path,
                                env=script_env(UNETBENCH_SITE="none", UNETBENCH_PYTHON=str(python)),
                                start_new_session=True)   # its own process group: `kill 0` stays inside
    jobs.append(proc)
    code = proc.wait(timeout=120)
    log = (tmp_path / "job.log").read_text()
    assert code == 3, log
    assert "received SIGUSR1" in log and "training exited with status 3" in log
    # nothing was trained, so nothing was saved: the job says so rather than "checkpoint saved"
    assert "interrupted; nothing saved (stopped before the first training step)" in log
    assert not (out / "last_cpu.pth").exists()
