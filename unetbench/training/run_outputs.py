"""A run's claim on its outputs (OUT/results_<run>.json, last_<run>.pth, best_unet_<run>.pth):
one run at a time, nothing finished overwritten by an unfinished one.

    outputs = RunOutputs.of(settings, backend.name)   # OUT and the run name (default: the backend's)
    outputs.claim()                      # lock OUT/.lock_<run> (UserError if another run holds it),
                                         # remove temp files left by a killed write
    outputs.refuse_unfinished(settings)  # an unfinished last_<run>.pth needs --auto-resume
                                         # (continue) or --restart (start over)
    outputs.keep_completed_checkpoints(settings)   # a new run beside a completed one: its weights kept
    outputs.write(status, payload)       # into the file this status belongs in (see below)

Who claims: the launcher (launch.py), once, after the trainer has checked the data (a refused run
writes nothing), and the benchmark for its end-to-end run; the Trainer is handed the outputs and
only writes into them.

A completed results_<run>.json is kept while a new run into the same name has not completed:
the new run's "running", "interrupted" and "failed" states go to OUT/rerun_<run>.json beside it
(the comparison reads results_*.json only), and its "completed" replaces the old file and
removes the rerun file. The lock is an flock(2) held until the process exits, so a run killed
with SIGKILL leaves no stale lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from ..core.errors import UserError
from ..core.overlay_file import overlays_path
from .results import results_path, write_results

log = logging.getLogger(__name__)

# Locks this process holds, by path. The lock lives as long as the process, so a second run of
# the same name into the same folder in one process (one after the other: tests, a notebook)
# finds it held by itself, which is no other run.
_held: dict[str, int] = {}


class RunOutputs:
    def __init__(self, out: str | Path, run_name: str):
        self.out = Path(out)
        self.run_name = run_name
        self.results = results_path(self.out, run_name)
        self.rerun = self.out / f"rerun_{run_name}.json"
        self.last = self.out / f"last_{run_name}.pth"
        self.lock_path = self.out / f".lock_{run_name}"
        self._lock_fd: int | None = None
        self._keep_completed: bool | None = None

    @classmethod
    def of(cls, settings, backend_name: str) -> "RunOutputs":
        """A training run's outputs: --out, and --run-name or else the backend's name."""
        return cls(settings.out, settings.run_name or backend_name)

    # -- one run at a time ------------------------------------------------------------------
    def claim(self) -> None:
        if self._lock_fd is not None or str(self.lock_path.absolute()) in _held:
            return
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"--out {self.out} is a file, not a folder; name a folder for the results")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            blocking = next((p for p in self.out.parents if p.exists() and not p.is_dir()), None)
            reason = f"{blocking} is a file, not a folder" if blocking else err.strerror
            raise UserError(f"cannot write the results folder {self.out}: {reason}; "
                            "choose a writable --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # A shared file system without flock (Lustre mounted noflock, some NFS setups)
                # answers ENOSYS or EINVAL: no lock is possible there, which must not stop a run.
                os.close(fd)
                log.warning("cannot lock %s (%s): this file system has no flock; make sure no other run "
                            "writes the same --run-name into %s", self.lock_path, err.strerror, self.out)
                self.clean_stale_temps()
                return
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"another run is writing {self.results.name} in {self.out} ({holder}); "
                            "wait for it to end, or choose another --run-name or --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._lock_fd = _held[str(self.lock_path.absolute())] = fd   # released by the kernel at exit
        self.clean_stale_temps()

    def clean_stale_temps(self) -> None:
        """Remove temp files of this run's outputs left by a killed write (atomic.py names them
        .<file>.<random>.tmp); safe only under the lock, when no write of this run is underway."""
        for name in (self.results.name, self.rerun.name, self.last.name, f"best_unet_{self.run_name}.pth",
                     overlays_path(self.out, self.run_name).name):
            for tmp in self.out.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    # -- nothing unfinished overwritten -----------------------------------------------------
    def status(self) -> str | None:
        """The status of the latest run under this name: the rerun file's if there is one."""
        return _status_of(self.rerun) or _status_of(self.results)

    def refuse_unfinished(self, settings) -> None:
        if settings.resume or settings.auto_resume or settings.restart or not self.last.exists():
            return
        if self.status() == "completed":
            return   # the checkpoint of a finished run: a new run may replace it
        raise UserError(f"{self.last} holds an unfinished run (status {self.status() or 'unknown'}); "
                        "continue it with --auto-resume, or start over with --restart (which replaces it)")

    def keep_completed_checkpoints(self, settings) -> None:
        """A new run under the name of a completed one writes its own best and last checkpoints,
        while the completed results_<run>.json stays until the new run completes (the rerun
        file above): that file must not then describe weights which are no longer there. So the
        completed run's checkpoints move to kept_<name> beside it, and its results file (written
        whole, atomically) points to them; the new run's completion removes them with it. A
        resuming run (--resume, --auto-resume) continues from them and moves nothing."""
        if settings.resume or settings.auto_resume or _status_of(self.results) != "completed":
            return
        try:
            data = json.loads(self.results.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        moved = {}
        for role, path in (data.get("checkpoints") or {}).items():
            current = self.out / Path(path).name if isinstance(path, str) else None
            if current is None or not current.is_file() or current.name.startswith("kept_"):
                continue
            kept = current.with_name(f"kept_{current.name}")
            os.replace(current, kept)
            moved[role] = str(kept)
        if moved:
            data["checkpoints"] = {**data["checkpoints"], **moved}
            write_results(self.results, data)
            log.info("kept the completed run's checkpoints as %s", ", ".join(moved.values()))

    def results_for(self, status: str) -> Path:
        if self._keep_completed is None:   # decided once, at the run's first write
            self._keep_completed = _status_of(self.results) == "completed"
        return self.rerun if self._keep_completed and status != "completed" else self.results

    def write(self, status: str, payload: dict) -> Path:
        path = self.results_for(status)
        write_results(path, payload)
        if status == "completed":   # this run's own record now: the rerun file has served,
            self.rerun.unlink(missing_ok=True)   # and the checkpoints the old record pointed to
            for name in (f"best_unet_{self.run_name}.pth", self.last.name):
                (self.out / f"kept_{name}").unlink(missing_ok=True)
        return path


def _status_of(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
