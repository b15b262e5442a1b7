"""Stop signals as Slurm and a terminal deliver them: to the whole process group, loader workers
included (scancel, the time limit, preemption, Ctrl-C), and at any moment, even during imports.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/training/test_stop_signals.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, SMALL_TRAINING, read_results

from unetbench.training.stop_signals import StopRequest

UNET_CPU = ["unet_cpu.py"]
LAUNCH_MODULE = ["-m", "unetbench.launch", "--backend", "cpu"]


def _train(splits, out, *extra, command=UNET_CPU):
    """unet_cpu.py (or another training command) in a process group of its own (as a batch step
    is), output merged."""
    args = [sys.executable, *command, "--splits", splits, "--out", out, "--epochs", "20",
            "--max-steps-per-epoch", "6", *SMALL_TRAINING, *extra]
    return subprocess.Popen([str(a) for a in args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _catches(pid: int, sig: int) -> bool:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        caught = next(int(line.split()[1], 16) for line in fh if line.startswith("SigCgt:"))
    return bool(caught >> (sig - 1) & 1)


def test_workers_ignore_the_stop_signals_the_main_process_owns():
    # In a child: the handlers are process-wide.
    code = ("import signal, os\nfrom unetbench.training.stop_signals import ignore_stop_signals\nignore_stop_signals(0)\n"
            "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1): os.kill(os.getpid(), s)\nprint('alive')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "alive", proc.stderr
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # this process untouched


# A worker signalled after its fork and before it ignores the stop signals (a preemption while
# a loader starts its workers): here the worker signals itself first thing, in that window.
SIGNALLED_WORKER = """
import contextlib, os, signal, numpy as np, torch
from unetbench.data.loaders import WorkerLoader
from unetbench.training.stop_signals import ignore_stop_signals, stop_signals_held

def start(worker_id):
    os.kill(os.getpid(), signal.SIGTERM)
    ignore_stop_signals(worker_id)

for worker_start in (stop_signals_held, contextlib.nullcontext):
    loader = WorkerLoader(list(range(8)), batch_size=2, num_workers=1, worker_init_fn=start,
                          worker_start=worker_start)
    try:
        print(sum(int(b.sum()) for b in loader))
    except RuntimeError as err:
        print(err)
"""


@pytest.mark.slow
def test_a_signal_between_a_workers_fork_and_its_ignoring_is_discarded_only_when_held():
    proc = subprocess.run([sys.executable, "-c", SIGNALLED_WORKER], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    held, not_held = proc.stdout.strip().splitlines()
    assert held == "28"                          # every batch, from a worker that survived
    assert "exited unexpectedly" in not_held     # the window the hold closes: the worker dies


def test_a_signal_is_a_request_and_restore_puts_back_the_handlers_found():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    stop = StopRequest.install()
    try:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)   # SIGINT is a stop like TERM, not a KeyboardInterrupt
        assert stop.requested and stop.signal_name == "SIGINT"
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) is before   # the handler found is put back


def test_a_request_nobody_installed_is_never_set():
    # What a Trainer gets without one (the benchmark, tests): signals keep their usual effect.
    before = signal.getsignal(signal.SIGTERM)
    stop = StopRequest()
    assert not stop.requested and signal.getsignal(signal.SIGTERM) is before
    stop.restore()   # nothing to put back
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_signal_to_the_whole_group_with_loader_workers_checkpoints_and_exits_3(tiny_splits, tmp_path, sig):
    proc = _train(tiny_splits, tmp_path, "--workers", "4")   # the default number of workers
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch 1/20: step 2/"):
            os.killpg(proc.pid, sig)   # as scancel / the time limit / Ctrl-C do: every process
            break
    output = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 3, output
    assert "Traceback" not in output and "exited unexpectedly" not in output, output
    assert f"interrupted by {sig.name}: checkpoint saved" in output
    assert (tmp_path / "last_cpu.pth").exists()
    results = read_results(tmp_path)
    assert results["status"] == "interrupted" and sig.name in results["message"]


@pytest.mark.slow
@pytest.mark.parametrize("command", [UNET_CPU, LAUNCH_MODULE], ids=["unet_cpu.py", "-m unetbench.launch"])
def test_a_signal_during_the_imports_exits_3_with_nothing_to_save(tiny_splits, tmp_path, command):
    # Each command installs the handlers once, before it imports torch; the run acts on the request.
    proc = _train(tiny_splits, tmp_path, "--workers", "2", command=command)
    deadline = time.monotonic() + 60
    while not _catches(proc.pid, signal.SIGTERM):   # the handler is in place: now, mid-import
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 3, output
    assert "before the first training step: nothing to save" in output, output
    assert "Traceback" not in output
    assert not (tmp_path / "results_cpu.json").exists()   # no results claim a run that never started


@pytest.mark.slow
def test_a_run_with_loader_workers_exits_when_it_completes(tiny_splits, tmp_path):
    # The workers ignore SIGTERM, so multiprocessing's exit-time terminate() cannot end them:
    # without the orderly shutdown at exit this process would wait for them forever.
    proc = _train(tiny_splits, tmp_path, "--workers", "2", "--epochs", "1", "--max-steps-per-epoch", "2")
    try:
        output = proc.communicate(timeout=180)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the run finished but did not exit: loader workers left running") from None
    assert proc.returncode == 0, output
    assert read_results(tmp_path)["status"] == "completed"
