"""prepare_dataset.py stopped mid-run (Ctrl-C at a terminal, SIGTERM from kill or scancel, to it
alone or to its whole process group with the pool's workers) ends within seconds with one line
and exit 130, removes what it was writing and leaves the dataset already there as it was.

    python -m pytest tests/data/test_prepare_signals.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO

from unetbench.core.interrupts import remove_left_by_dead
from unetbench.data.prepared import load_splits

BUSY = ["--synthetic", "--num-images", "1500", "--crop", "128x192", "--jobs", "2"]   # seconds of pool work


def _prepare(out, *flags):
    return subprocess.Popen([sys.executable, str(REPO / "prepare_dataset.py"), *flags, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)


@pytest.mark.slow
@pytest.mark.parametrize("sig, whole_group", [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)],
                         ids=["ctrl-c", "kill", "scancel"])
def test_a_stopped_prepare_leaves_nothing_and_keeps_the_earlier_dataset(tmp_path, sig, whole_group):
    out = tmp_path / "data"
    first = _prepare(out, "--synthetic", "--num-images", "40", "--crop", "32x48")
    assert first.wait(timeout=120) == 0, first.communicate()
    before = load_splits(out / "dataset_splits.json").sha256

    proc = _prepare(out, *BUSY, "--force")
    deadline = time.monotonic() + 120   # a hang guard: nothing here is timed
    # at work: its staging folder exists and the pool's handler threads run
    while not list(tmp_path.glob(".data.tmp-*")) or len(os.listdir(f"/proc/{proc.pid}/task")) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)                     # the pool's workers are at work
    if whole_group:
        os.killpg(proc.pid, sig)        # a terminal's Ctrl-C, scancel: the workers get it too
    else:
        os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("prepare hung after the signal")
    err = proc.communicate()[1]
    assert code == 130, err
    assert f"stopped by {signal.Signals(sig).name}" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "nothing half-written beside it"
    assert load_splits(out / "dataset_splits.json").sha256 == before, "the earlier dataset is intact"


def test_what_a_killed_run_left_is_removed_and_a_living_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".x.partial-{dead.pid}"
    left.mkdir()
    (left / "member.png").write_bytes(b"half")
    alive = tmp_path / f".x.partial-{os.getppid()}"   # a process that runs: its folder is in use
    alive.mkdir()
    assert remove_left_by_dead(tmp_path, ".x.partial-*") == [left]
    assert not left.exists() and alive.exists()
