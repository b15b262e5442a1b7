"""tar and tar.gz sources: extracted once into the cache, then read as a folder.

    folder = extract_tars([Path("images.tar.gz"), Path("annotations.tar.gz")], cache_dir=None)
    tar_archives(Path("/scratch/pets"))       # the .tar/.tar.gz/.tgz files directly in a folder

Oxford-IIIT Pet ships as two archives (images.tar.gz, annotations.tar.gz) that together form one
layout, and some mirrors serve them as plain tar despite the name: the type is taken from the
content, never from the name. A gzip stream has no random access, so members are not read in
place (as zip members are) but extracted, all archives of a source into one folder, under
$UNETBENCH_CACHE (or --cache-dir) in a folder named after the archives' paths, sizes and dates:
a second run reuses it. Extraction goes to a temporary folder renamed when complete, with
tarfile's "data" filter (no absolute paths, links out of the folder or device files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path
from typing import List, Sequence

from ...core.errors import UserError
from ...core.interrupts import remove_left_by_dead
from .writer import WRITE_ERRORS, explain_write_error

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def is_tar(path: Path) -> bool:
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False


def tar_archives(folder: Path) -> List[Path]:
    """The tar archives (by content) directly inside ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.name.lower().endswith(TAR_SUFFIXES) and is_tar(p))


def _key(archives: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in archives:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def extract_tars(archives: Sequence[Path], cache_root: Path) -> Path:
    """One folder holding every archive's members (extracted once, reused while they are unchanged)."""
    name = "+".join(p.name.split(".")[0] for p in archives)[:60]
    target = cache_root / "extracted" / f"{name}-{_key(archives)}"
    if target.is_dir():
        return target
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        partial.mkdir(parents=True, exist_ok=True)
        # A run killed outright (SIGKILL, a node crash) cleans up nothing: the next one does.
        remove_left_by_dead(target.parent, f".{target.name}.partial-*")
    except OSError as err:
        raise UserError(f"cannot create {partial.parent} to extract the archives into ({err.strerror}); "
                        "use --cache-dir DIR or extract them yourself and pass the folder") from None
    try:
        for path in archives:
            try:
                with tarfile.open(path, "r:*") as tar:   # gzip or plain, whatever the name says
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(partial, filter="data")
                    else:   # Python before 3.11.4 / 3.10.12: refuse unsafe members by hand
                        members = [m for m in tar.getmembers() if (m.isfile() or m.isdir())
                                   and not m.name.startswith(("/", "..")) and ".." not in m.name.split("/")]
                        tar.extractall(partial, members=members)
            except OSError as err:
                if err.errno in WRITE_ERRORS:   # the cache is full or read-only: not the archive's fault
                    raise explain_write_error(err, partial.parent, "--cache-dir") from None
                raise UserError(f"{path}: cannot extract this tar archive ({err}); it is truncated or corrupt: "
                                "download it again") from None
            except (tarfile.TarError, EOFError) as err:
                raise UserError(f"{path}: cannot extract this tar archive ({err}); it is truncated or corrupt: "
                                "download it again") from None
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
