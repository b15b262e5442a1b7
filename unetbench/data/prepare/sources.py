"""Where source files come from: a local folder, a .zip, or a Kaggle download (cached).

Use::

    reader = open_source("/scratch/lyft.zip")          # or a folder
    files = list_files(reader)                        # [(relpath, size, mtime_ns), ...]
    data = reader.read(files[0][0])                   # bytes
    zip_path = fetch_kaggle(DATASETS[DEFAULT_DATASET].kaggle_slug, cache_dir=None)   # unetbench.core.registry

Zips are read in place (no extraction): each worker process opens the archive once. ``kaggle`` is
imported only inside :func:`download`, after :func:`kaggle_credentials` found credentials,
because the package authenticates at import time and exits the process when that fails. Tests
replace :func:`download` only; everything around it (cache, checks, zip reading) is real.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ...core.errors import UserError
from ...core.import_errors import import_failure
from ...core.interrupts import remove_left_by_dead
from ...core.registry import DATASETS, DEFAULT_DATASET

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

_scandir = os.scandir  # tests swap this to simulate an unreadable folder (root ignores chmod)
_OPEN_ZIPS: Dict[str, zipfile.ZipFile] = {}
# One open archive per process. A forked worker inherits its parent's, and with it the same
# open file and file offset: two processes seeking and reading it at once interleave and read
# garbage ("Bad CRC-32" on a valid zip). So a child forgets the inherited handles and opens
# its own; the inherited file is closed with the child's references, never the parent's.
os.register_at_fork(after_in_child=_OPEN_ZIPS.clear)


@dataclass(frozen=True)
class SourceReader:
    """A picklable handle on the source: ``kind`` is "local" (a folder) or "zip"."""
    kind: str
    root: str

    def read(self, rel: str) -> bytes:
        if self.kind == "zip":
            archive = _OPEN_ZIPS.get(self.root)
            if archive is None:
                archive = _OPEN_ZIPS[self.root] = zipfile.ZipFile(self.root)
            return archive.read(rel)
        with open(os.path.join(self.root, rel), "rb") as fh:
            return fh.read()


def open_source(path, cache_dir=None) -> SourceReader:
    """A folder, a zip, a tar(.gz), or a folder holding tar(.gz) archives, given with --source-dir.
    Tar archives are extracted once into the cache (prepare/archives.py) and read as a folder."""
    from .archives import extract_tars, is_tar, tar_archives
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"--source-dir {p}: does not exist; give a folder, a .zip or a .tar.gz of the dataset")
    if p.is_dir():
        if not os.access(p, os.R_OK | os.X_OK):
            raise UserError(f"--source-dir {p}: folder is not readable (permission denied); fix its permissions")
        archives = tar_archives(p)
        if archives and not _has_images(p):   # e.g. Oxford-IIIT Pet's images.tar.gz + annotations.tar.gz
            return SourceReader("local", str(extract_tars(archives, _cache_root(cache_dir))))
        return SourceReader("local", str(p.resolve()))
    if is_tar(p):
        return SourceReader("local", str(extract_tars([p], _cache_root(cache_dir))))
    if not zipfile.is_zipfile(p):
        raise UserError(f"--source-dir {p}: is not a folder, not a zip and not a tar archive (corrupt or incomplete "
                        "download?); give a folder, or re-create/re-download the archive")
    return SourceReader("zip", str(p.resolve()))


def _has_images(folder: Path) -> bool:
    for _, _, names in os.walk(folder):
        if any(os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS for n in names):
            return True
    return False


def stray_files(reader: SourceReader, folder: str) -> List[str]:
    """Files in ``folder`` of the source that are not images (Oxford-IIIT Pet's stray .mat files)."""
    prefix = folder.rstrip("/") + "/"
    if reader.kind == "zip":
        with zipfile.ZipFile(reader.root) as archive:
            names = [n for n in archive.namelist() if n.startswith(prefix) and not n.endswith("/")]
    else:
        base = Path(reader.root) / folder
        names = [f"{prefix}{p.name}" for p in base.iterdir() if p.is_file()] if base.is_dir() else []
    return sorted(n for n in names if os.path.splitext(n)[1].lower() not in IMAGE_EXTENSIONS
                  and not os.path.basename(n).startswith("."))


def list_files(reader: SourceReader) -> List[Tuple[str, int, int]]:
    """Image files in the source, sorted: (path relative to the root, size, mtime in ns)."""
    if reader.kind == "zip":
        return _list_zip(Path(reader.root))
    found: List[Tuple[str, int, int]] = []
    root = Path(reader.root)
    _walk(root, "", found, {_identity(root)})
    found.sort()
    return found


def _identity(folder: Path) -> Tuple[int, int]:
    st = folder.stat()
    return st.st_dev, st.st_ino


def _walk(root: Path, rel: str, found: list, seen: set) -> None:
    """Image files under ``root/rel``; ``seen``: the folders on the way (device, inode), so a
    symbolic link back to one of them is walked once, not until the path is too long."""
    folder = root / rel if rel else root
    try:
        with _scandir(folder) as entries:
            entries = list(entries)
    except PermissionError:
        raise UserError(f"cannot read folder {folder}: permission denied; fix its permissions "
                        "(chmod -R u+rX) or copy the data somewhere readable") from None
    except OSError as err:
        raise UserError(f"cannot read folder {folder}: {err.strerror or err}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        sub = f"{rel}/{entry.name}" if rel else entry.name
        image = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            st = None if is_dir or not image else entry.stat(follow_symlinks=True)
        except OSError as err:   # a link to itself (ELOOP) or to nothing
            if not image:
                log.warning("skipping %s: %s", folder / entry.name, err.strerror or err)
                continue
            raise UserError(f"cannot read {folder / entry.name}: {err.strerror or err} (a symbolic link that "
                            "loops or points nowhere?); fix or remove it") from None
        if is_dir:
            identity = _identity(Path(entry.path))
            if identity in seen:
                log.warning("skipping %s: a symbolic link to a folder already read (a loop)", folder / entry.name)
                continue
            _walk(root, sub, found, seen | {identity})
        elif st is not None:
            found.append((sub, st.st_size, st.st_mtime_ns))


def _list_zip(path: Path) -> List[Tuple[str, int, int]]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as err:
        raise UserError(f"{path}: not a readable zip archive ({err}); re-download it or pass the extracted folder") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    found = []
    for info in infos:
        name = info.filename
        if info.is_dir() or "__MACOSX" in name or any(part.startswith(".") for part in name.split("/")):
            continue
        if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
            # zip members have no ns mtime; date_time + CRC identify the member's content
            stamp = int("".join(f"{v:02d}" for v in info.date_time)) * 1000 + (info.CRC % 1000)
            found.append((name, info.file_size, stamp))
    found.sort()
    return found


# ---------------------------------------------------------------- Kaggle

def _config_dir() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()


def credential_help(slug: str) -> str:
    """The first-run message without credentials: how to get them, and the offline way."""
    token = _config_dir() / "kaggle.json"
    return (f"no Kaggle credentials found, so {slug} cannot be downloaded. To get them: sign in on "
            f"kaggle.com, Settings > API > Create New Token, which downloads kaggle.json; save it as {token} "
            f"and run chmod 600 {token} (or export KAGGLE_USERNAME and KAGGLE_KEY with the values in it; "
            "KAGGLE_API_TOKEN or KAGGLE_CONFIG_DIR work too), and accept the dataset's terms on its Kaggle "
            "page; then run this again on a machine with internet (the login node): the download is cached "
            "for later runs. Compute nodes without internet: copy the dataset (its folder or zip) over and "
            "pass --source-dir PATH; --synthetic needs no download at all")


def kaggle_credentials() -> Optional[str]:
    """Where Kaggle credentials are (a description, never the secret), or None."""
    env = os.environ
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    config_dir = _config_dir()
    for name in ("kaggle.json", "access_token", "access_token.txt", "credentials.json"):
        candidate = config_dir / name
        if candidate.is_file() and candidate.stat().st_size > 0:
            if name == "kaggle.json" and candidate.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning("%s is readable by other users; run: chmod 600 %s", candidate, candidate)
            return str(candidate)
    return None


def download(slug: str, dest: Path) -> None:
    """Download dataset ``slug`` as a zip into folder ``dest`` (the only network access)."""
    chatter = io.StringIO()  # kaggle prints help and progress text; keep our output to our lines
    try:
        with contextlib.redirect_stdout(chatter):
            from kaggle.api.kaggle_api_extended import KaggleApi
            api = KaggleApi()
            api.authenticate()
            api.dataset_download_files(slug, path=str(dest), unzip=False, quiet=True)
    except ImportError as err:   # kaggle itself, or a module it needs (named as such)
        raise UserError(import_failure(err, "kaggle", "pip install 'unetbench[kaggle]' (or pip install kaggle)")
                        + "; or use --source-dir / --synthetic") from None
    except SystemExit:
        raise UserError("Kaggle rejected the credentials (authentication failed); create a new token "
                        "on kaggle.com > Settings and update ~/.kaggle/kaggle.json or KAGGLE_API_TOKEN") from None


def _cache_root(cache_dir) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("UNETBENCH_CACHE"):
        return Path(os.environ["UNETBENCH_CACHE"]).expanduser()
    return Path.home() / ".cache" / "unetbench"


def fetch_kaggle(slug: str, cache_dir=None) -> Path:
    """The dataset's zip in the cache, downloading it once if it is not there yet."""
    parts = slug.split("/")
    if len(parts) != 2 or not all(parts) or any(c in slug for c in " \\:"):
        raise UserError(f"--kaggle-dataset {slug!r}: expected OWNER/NAME, e.g. "
                        f"{DATASETS[DEFAULT_DATASET].kaggle_slug}")
    folder = _cache_root(cache_dir) / "kaggle" / parts[0] / parts[1]
    target = folder / f"{parts[1]}.zip"
    if target.is_file() and zipfile.is_zipfile(target):
        log.info("using cached download %s", target)
        return target
    where = kaggle_credentials()
    if where is None:
        raise UserError(credential_help(slug))
    log.info("downloading Kaggle dataset %s into %s (credentials from %s)", slug, folder, where)
    partial = folder / f".download-{os.getpid()}"
    try:
        partial.mkdir(parents=True, exist_ok=True)
        remove_left_by_dead(folder, ".download-*")   # what a killed download left
    except OSError as err:
        raise UserError(f"cannot create the download cache {folder}: {err.strerror}; use --cache-dir") from None
    try:
        try:
            download(slug, partial)
        except UserError:
            raise
        except Exception as err:  # network, HTTP 403/404, proxy, disk: one line, no traceback
            text = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise UserError(f"download of Kaggle dataset {slug} failed: {text}; check the name, your "
                            "network or proxy, that you accepted the dataset's terms on kaggle.com, and "
                            "free space in the cache; or copy the data over and use --source-dir") from None
        zips = sorted(partial.glob("*.zip"))
        if len(zips) != 1 or not zipfile.is_zipfile(zips[0]):
            raise UserError(f"download of Kaggle dataset {slug} did not produce one valid zip in {partial}; "
                            "delete the cache folder and retry, or use --source-dir")
        os.replace(zips[0], target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
