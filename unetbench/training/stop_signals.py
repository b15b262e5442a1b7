"""Graceful stop on SIGUSR1 / SIGTERM / SIGINT (Slurm's warning before a time limit, scancel,
the time limit itself, preemption; Ctrl-C at a terminal).

    stop = StopRequest.install()     # once per process, by the command, before torch is imported
    Trainer(..., stop=stop).run()    # after each step: if stop.requested: save, results "interrupted", exit 3
    stop.restore()                   # the run is over: the handlers found at install are back
    DataLoader(..., worker_init_fn=ignore_stop_signals)   # workers leave the signals to the run
    with stop_signals_held(): iter(loader)                # ... from the instant they are forked
    end_workers_at_exit(loader)      # ... so they are shut down in order when the process exits

Who installs: the training command, first thing, before the imports that take seconds (torch,
the model build), so that a signal landing then is kept and acted on by the run (exit 3: a
batch job still requeues): unet_<backend>.py through entry.py, ``python3 -m unetbench.launch``
in launch.py's ``__main__`` block. One of the two runs per process; the request is handed down to
launch.main and the Trainer. A Trainer given none has a request no signal sets (the benchmark,
tests): a signal then acts as it would without this suite.

Why workers ignore them: scancel, the time limit and preemption signal the job's whole process
group, loader workers included. A worker that died of SIGTERM would make the main process
fail ("DataLoader worker ... exited unexpectedly") before it could checkpoint; the main process
alone decides when to stop, and its workers end with it. A worker is forked with torch's
own SIGTERM handler, which kills it, and ignores the signals only once ``worker_init_fn`` runs:
a signal in between (a preemption while an evaluation loader starts its workers) would kill it
all the same. So the main process starts its workers with the stop signals blocked; each worker
inherits the block, ignores the signals, then unblocks them, which discards any that came.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import weakref


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: the stop signals are the main process's business."""
    for sig in StopRequest.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    # Held since the fork (stop_signals_held): one that came meanwhile is pending, and now ignored.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, StopRequest.SIGNALS)


@contextlib.contextmanager
def stop_signals_held():
    """Block the stop signals while loader workers are forked (they inherit the block); a signal
    to this process meanwhile is delivered, to its handler, when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, StopRequest.SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def end_workers_at_exit(loader):
    """Register a DataLoader whose (persistent) workers must be shut down before the interpreter
    exits; returns it. Workers that ignore SIGTERM outlive multiprocessing's exit-time
    terminate(), whose join would then wait forever; torch shuts persistent workers down itself
    only when it pins memory. Registered after torch's own exit hooks, so this runs first."""
    global _exit_hook
    if getattr(loader, "num_workers", 0) > 0:
        if not _exit_hook:
            atexit.register(_shut_down_workers)
            _exit_hook = True
        _loaders.add(loader)
    return loader


_loaders: "weakref.WeakSet" = weakref.WeakSet()
_exit_hook = False


def _shut_down_workers() -> None:
    for loader in list(_loaders):
        # The iterator's own orderly shutdown: workers told to stop, joined, queues closed.
        shutdown = getattr(getattr(loader, "_iterator", None), "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


# The batch job names a file here and writes the signal's name into it before forwarding the
# signal itself (scripts/lib_job.sh). The file reaches the training where the signal cannot: a
# process between them that does not forward it (nsys profile), or a signal that came before
# the handlers were installed (the job starts the training with the stop signals ignored, so
# that one cannot kill it: it is then read from the file at install).
STOP_FILE_VAR = "UNETBENCH_STOP_FILE"


class StopRequest:
    SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)

    def __init__(self, stop_file: str | None = None):
        self.signal_name: str | None = None
        self._previous: dict = {}
        self.stop_file = stop_file

    @property
    def requested(self) -> bool:
        if self.signal_name is None and self.stop_file:
            self._read_stop_file()   # one failed open() while nothing was asked: microseconds a step
        return self.signal_name is not None

    def _read_stop_file(self) -> None:
        try:
            with open(self.stop_file) as fh:
                name = fh.read().strip()
        except OSError:
            return
        if name in {sig.name[3:] for sig in self.SIGNALS}:
            self.signal_name = f"SIG{name}"

    def _handle(self, signum, _frame) -> None:
        # Only set a flag: the loop finishes its current step and checkpoints in order.
        self.signal_name = signal.Signals(signum).name

    @classmethod
    def install(cls) -> "StopRequest":
        """A request that any stop signal from now on sets; the handlers it replaces are kept for restore()."""
        request = cls(os.environ.pop(STOP_FILE_VAR, None) or None)   # popped: not for child processes
        for sig in cls.SIGNALS:
            request._previous[sig] = signal.signal(sig, request._handle)
        if request.stop_file:
            request._read_stop_file()   # a stop written before the handlers existed counts now
        return request

    def restore(self) -> None:
        """Put back the handlers found at install: a finished run must not swallow SIGTERM
        for the rest of the process (or for children it forks later)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def nothing_to_save(stop: StopRequest, last_path) -> str:
    """The line a run stopped before its first step prints (it exits 3 all the same)."""
    kept = f"; {last_path} is unchanged" if last_path.exists() else ""
    return (f"interrupted by {stop.signal_name or 'a signal'} before the first training step: nothing to save{kept}; "
            "rerun with --auto-resume to continue")
