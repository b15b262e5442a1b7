"""Graceful stop on SIGUSR1 / SIGTERM / SIGINT (Slurm's warning before a time limit, scancel,
the time limit itself, preemption; Ctrl-C at a terminal).

    install_early()                  # entry points: before the imports that take seconds
    stop = StopRequest.install()     # the run: takes over what install_early() caught
    ... after each step: if stop.requested: save, write results "interrupted", exit 3
    stop.restore()                   # when the run is over
    DataLoader(..., worker_init_fn=ignore_stop_signals)   # workers leave the signals to the run
    end_workers_at_exit(loader)      # ... so they are shut down in order when the process exits

Why workers ignore them: scancel, the time limit and preemption signal the job's whole process
group, loader workers included. A worker that died of SIGTERM would make the main process
fail ("DataLoader worker ... exited unexpectedly") before it could checkpoint; the main process
alone decides when to stop, and its workers end with it.
"""

from __future__ import annotations

import atexit
import signal
import weakref

# The process's one request while install_early()'s handlers are in place: a signal that
# arrives during imports or the model build is kept for the run to act on.
_early: "StopRequest | None" = None


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: the stop signals are the main process's business."""
    for sig in StopRequest.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


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


def install_early() -> "StopRequest":
    """Install the stop handlers now (idempotent); StopRequest.install() later takes them over."""
    global _early
    if _early is None:
        _early = StopRequest.install()
    return _early


class StopRequest:
    SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, _frame) -> None:
        # Only set a flag: the loop finishes its current step and checkpoints in order.
        self.signal_name = signal.Signals(signum).name

    @classmethod
    def install(cls) -> "StopRequest":
        global _early
        if _early is not None:  # keeps a signal caught since install_early(), and its previous handlers
            request, _early = _early, None
            return request
        request = cls()
        for sig in cls.SIGNALS:
            request._previous[sig] = signal.signal(sig, request._handle)
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
