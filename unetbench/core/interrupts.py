"""Ctrl-C and SIGTERM end a tool cleanly: its cleanup runs, one line is printed, exit 130.

    run_cli(main, stop_cleanly=True)   # prepare_dataset.py, compare_results.py (core/errors.py)
    ignore_stop_signals_in_worker()    # first thing in a pool worker: its parent alone decides
    remove_left_by_dead(folder, ".data.tmp-*")   # temporary folders of killed runs

Python dies of SIGTERM without running a single ``finally``, so a tool stopped by ``scancel``
(or ``kill``) left its temporary folders behind (a 250 MB ``.partial-<pid>`` extraction in the
cache) and exited 143 without a word. Here SIGTERM raises, as Ctrl-C does, so every ``finally``
and context manager cleans up. SIGUSR1 (Slurm's warning before a time limit) is ignored: these
tools have nothing to checkpoint, and it would kill them.

Pool workers ignore INT and USR1 and leave on TERM by exiting (not by dying): a terminal's
Ctrl-C and ``scancel`` signal the whole process group, and a worker killed while it holds the
pool's task-queue lock makes the parent's Pool.terminate() wait for that lock forever (the
"Ctrl-C hangs prepare --jobs 2" of issue 24). An exit releases the lock on its way out.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by a stop signal (KeyboardInterrupt's kind: no ``except
    Exception`` swallows it)."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


def _raise(signum, _frame) -> None:
    raise Stopped(signal.Signals(signum).name)


def stop_cleanly_on_signals() -> None:
    """In a command's main thread, before its work: TERM and INT raise Stopped, USR1 is ignored."""
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def _leave(_signum, _frame) -> None:
    sys.exit(128 + signal.SIGTERM)


def ignore_stop_signals_in_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _leave)   # Pool.terminate()'s SIGTERM, or scancel's


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True   # alive, someone else's
    return True


_PID = re.compile(r"-(\d+)(?:-[0-9a-f]+)?$")


def remove_left_by_dead(folder: Path, pattern: str) -> list[Path]:
    """Remove what a killed run left in ``folder``: the entries matching ``pattern`` whose name
    ends in ``-<pid>`` (or ``-<pid>-<hex>``) of a process that no longer runs. Returns them."""
    removed = []
    for stale in Path(folder).glob(pattern):
        found = _PID.search(stale.name)
        if found is None or int(found[1]) == os.getpid() or pid_alive(int(found[1])):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed
