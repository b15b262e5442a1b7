"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Usage::

    from unetbench.core.atomic import atomic_write_json, atomic_path
    atomic_write_json("results/results_cuda.json", payload)
    with atomic_path("best.pth") as tmp:   # write to tmp; renamed on success
        torch.save(state, tmp)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError


def _explain_os_error(err: OSError, path: Path) -> UserError:
    if err.errno == errno.ENOSPC:
        return UserError(f"no space left on the device holding {path}; free space or choose another folder")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {path}: permission denied; choose a writable folder")
    if err.errno in (errno.EEXIST, errno.ENOTDIR):   # mkdir met a file where a folder belongs
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            return UserError(f"cannot write {path}: {blocking} is a file, not a folder; choose another path")
    return UserError(f"cannot write {path}: {err.strerror or err}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
        # mkstemp creates 0600; results on a shared cluster folder should get the usual umask.
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
    except OSError as err:
        raise _explain_os_error(err, path) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise _explain_os_error(err, path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            raise _explain_os_error(err, Path(path)) from None


def atomic_write_json(path: str | os.PathLike, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n")
