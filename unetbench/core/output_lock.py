"""One writer at a time per output folder: prepare_dataset.py --out, compare_results.py
--report-dir, run_benchmark.sh --run-dir.

    with output_lock(Path("data"), "prepare_dataset.py", "--out"):   # UserError when another holds it
        ...                                                          # build, then publish

Two runs into one folder used to both report success while one silently replaced (or deleted)
the other's work. The lock is a file beside the folder, ``.NAME.lock``, made with O_EXCL, which
works on every shared file system (flock does not on some NFS and Lustre mounts), and holds the
host, pid, tool and start time of its owner. A lock whose process no longer runs on this host is
taken over; one held from another host is refused, naming it and how to remove it once that
process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from .errors import UserError
from .interrupts import pid_alive


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def output_lock(target: Path, tool: str, flag: str):
    target = Path(target).absolute()
    path = lock_path(target)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "tool": tool,
             "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write {target}: a part of that path is a file, not a folder; choose another "
                        f"folder with {flag}") from None
    except OSError as err:
        raise UserError(f"cannot create {target.parent} for {flag} {target}: {err.strerror or err}; "
                        f"choose another {flag}") from None
    for _ in range(2):   # a second try after taking over a dead owner's lock
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder.get("host") == owner["host"] and isinstance(holder.get("pid"), int) \
                    and not pid_alive(holder["pid"]):
                path.unlink(missing_ok=True)   # its process is gone: a killed run's lock
                continue
            who = (f"{holder.get('tool', 'another run')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                   f"since {holder.get('started', '?')})") if holder else "another run"
            raise UserError(f"{target} is being written by {who}; wait for it to finish or choose another {flag} "
                            f"(if that process no longer runs, remove {path})") from None
        except OSError as err:
            raise UserError(f"cannot create the lock {path} for {flag} {target}: {err.strerror or err}; "
                            f"choose a writable {flag}") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(owner, fh)
        break
    else:
        raise UserError(f"cannot take the lock {path} for {flag} {target}: another run keeps taking it; "
                        "try again")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _read(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}
