"""Packed output arrays and the staging folder that makes a dataset appear all at once.

Use::

    with Staging(Path("data")) as stage:            # builds in data/../.data.tmp-<pid>-<rand>/
        create_array(stage.path / "train_images.npy", (n, h, w, 3))
        ...                                         # workers: np.load(path, mmap_mode="r+")[row] = crop
        stage.publish()                             # rename into place; the old dataset goes last

Arrays are plain ``.npy`` files created at full size with their blocks allocated up front
(``posix_fallocate``): a full disk then fails at creation with a clear message, instead of as
SIGBUS in a worker that writes into a sparse memory map. Nothing is read back into memory;
crops are streamed into the maps, so memory stays bounded whatever the dataset size.
"""

from __future__ import annotations

import ast
import errno
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Tuple

import numpy as np

from ...core.errors import UserError
from ...core.interrupts import remove_left_by_dead
from ..prepared import sha256_file

log = logging.getLogger(__name__)

_NO_FALLOCATE = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def explain_write_error(err: OSError, path: Path, flag: str = "--out") -> UserError:
    """A one-line message for a failed write (full disk, permissions, anything else); ``flag``
    is the option that chooses another folder (--out for the dataset, --cache-dir for downloads)."""
    if err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        return UserError(f"no space left on the device holding {path} (disk or quota full); "
                         f"free space or choose another folder with {flag}")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {path}: permission denied; choose a writable folder with {flag}")
    # The OS's own words mislead here ("File exists" for a path under a file, "No such file" for
    # a folder): say what is in the way.
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return UserError(f"cannot write {path}: a part of that path is a file, not a folder; choose another "
                         f"folder with {flag}")
    if err.errno == errno.EBUSY:
        return UserError(f"cannot replace {path}: it is in use (a mount point, or a folder another program "
                         f"holds); choose another folder with {flag}")
    if err.errno == errno.ENOENT:
        return UserError(f"cannot write {path}: a folder on that path disappeared while writing (removed by "
                         f"another program?); run again, or choose another folder with {flag}")
    return UserError(f"cannot write {path}: {err.strerror or err}")


def preallocate(fd: int, size: int) -> None:
    """Allocate ``size`` bytes of the file behind ``fd`` now (no-op where unsupported)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno not in _NO_FALLOCATE:
            raise
    except AttributeError:  # not on this platform (macOS): writes may still fail later
        pass


def create_array(path: Path, shape: Tuple[int, ...], dtype=np.uint8) -> None:
    """Create ``path`` as a .npy of ``shape`` filled with zeros, its space allocated."""
    try:
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
        del arr
        fd = os.open(path, os.O_RDWR)
        try:
            preallocate(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
    except OSError as err:
        raise explain_write_error(err, path) from None


def _header_length(path: Path) -> Tuple[int, tuple, np.dtype]:
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
        return fh.tell(), shape, dtype


def shrink_rows(path: Path, rows: int) -> None:
    """Cut a .npy down to its first ``rows`` rows in place (used after --skip-bad dropped pairs).

    The header is rewritten at exactly its old length (padded with spaces, as the format allows),
    so the data offset does not move and no row is copied.
    """
    offset, shape, dtype = _header_length(path)
    new_shape = (rows,) + tuple(shape[1:])
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": new_shape}
    text = repr(header)
    with open(path, "rb") as fh:
        prefix = fh.read(offset)
    # magic (6) + version (2) + header length field (2 for v1, 4 for v2/3)
    field = 2 if prefix[6] == 1 else 4
    start = 8 + field
    room = offset - start
    body = (text + " " * (room - len(text) - 1) + "\n").encode("latin1")
    if len(body) != room:
        raise RuntimeError(f"cannot rewrite the header of {path}")
    assert ast.literal_eval(text) == header
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    with open(path, "r+b") as fh:
        fh.seek(start)
        fh.write(body)
        fh.truncate(offset + rows * row_bytes)


def finish_file(path: Path) -> str:
    """fsync ``path`` (workers wrote it through memory maps) and return its sha256."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())  # flushes every process's dirty pages of this file, not just ours
    return sha256_file(path)   # the digest the readers check (unetbench.data.prepared)


class Staging:
    """A temporary folder beside ``out`` that replaces ``out`` only on :meth:`publish`.

    An exception, Ctrl-C or a crash before ``publish`` leaves ``out`` as it was; the temporary
    folder is removed on exceptions (a killed process leaves a ``.NAME.tmp-*`` folder that the
    next run removes).
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out.parent / f".{self.out.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}"
        self.published = False

    def __enter__(self) -> "Staging":
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
            self.path.mkdir()
        except OSError as err:
            raise explain_write_error(err, self.out) from None
        return self

    def _remove_stale(self) -> None:
        for stale in remove_left_by_dead(self.out.parent, f".{self.out.name}.tmp-*"):
            log.info("removed %s, left by an interrupted run", stale)

    def publish(self) -> None:
        old = None
        try:
            if self.out.exists():
                old = self.out.parent / f".{self.out.name}.old-{os.getpid()}-{secrets.token_hex(3)}"
                os.rename(self.out, old)
            os.rename(self.path, self.out)
        except OSError as err:
            if old is not None and not self.out.exists():
                os.rename(old, self.out)  # put the previous dataset back
            raise explain_write_error(err, self.out) from None
        self.published = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        if not self.published:
            shutil.rmtree(self.path, ignore_errors=True)
