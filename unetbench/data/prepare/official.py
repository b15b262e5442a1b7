"""Downloads from a dataset's official site (Kvasir-SEG, Oxford-IIIT Pet), cached and checked.

    path = fetch_official(DATASETS["kvasir-seg"], cache_dir=None)   # .../official/kvasir-seg/kvasir-seg.zip
    path = fetch_official(DATASETS["oxford-pet"], cache_dir=None)   # the folder holding both .tar.gz

Run it where there is internet (the login node); compute nodes have none. Every file of the
entry's ``urls`` is fetched once into $UNETBENCH_CACHE/official/<name>/ (or --cache-dir), through
a temporary name renamed when complete and, where the registry has the published SHA256, checked
against it. Without a connection the error names each URL to fetch by hand and how to pass the
file or folder with --source-dir. Tests replace :func:`download` only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import urllib.parse
import urllib.request
from pathlib import Path

from ...core.errors import UserError
from ...core.interrupts import remove_left_by_dead
from ...core.registry import DatasetSpec

log = logging.getLogger("unetbench.data.prepare")
TIMEOUT_S = 30


def download(url: str, dest: Path) -> None:
    """Fetch ``url`` into file ``dest`` (the only network access)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(dest, "wb") as fh:
        while True:
            block = response.read(1 << 20)
            if not block:
                break
            fh.write(block)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_name(url: str) -> str:
    return posixpath.basename(urllib.parse.urlparse(url).path)


def manual_help(spec: DatasetSpec, folder: Path) -> str:
    names = [_file_name(u) for u in spec.urls]
    where = f"--source-dir {folder / names[0]}" if len(names) == 1 else f"--source-dir {folder} (the folder holding both)"
    return (f"fetch {' and '.join(spec.urls)} by hand on a machine with internet (the login node), copy "
            f"{' and '.join(names)} into {folder} and run prepare_dataset.py --dataset {spec.name} {where}")


def fetch_official(spec: DatasetSpec, cache_dir: Path) -> Path:
    """The downloaded file (one url) or the folder holding them (several), fetched once."""
    folder = cache_dir / "official" / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the download cache {folder}: {err.strerror}; use --cache-dir") from None
    for i, url in enumerate(spec.urls):
        target = folder / _file_name(url)
        if target.is_file():
            log.info("using cached download %s", target)
            continue
        partial = folder / f".{target.name}.partial-{os.getpid()}"
        remove_left_by_dead(folder, f".{target.name}.partial-*")   # what a killed download left
        log.info("downloading %s into %s", url, folder)
        try:
            download(url, partial)
        except BaseException as err:   # Ctrl-C, SIGTERM (core/interrupts.py) and every failure
            partial.unlink(missing_ok=True)
            if not isinstance(err, OSError):   # URLError, timeouts, DNS, HTTP errors, disk: OSError
                raise
            raise UserError(f"cannot download {url} ({getattr(err, 'reason', None) or err}); without internet "
                            f"{manual_help(spec, folder)}") from None
        if i < len(spec.sha256) and sha256_of(partial) != spec.sha256[i]:
            partial.unlink(missing_ok=True)
            raise UserError(f"{url}: the download's SHA256 is not the published {spec.sha256[i]} (incomplete or "
                            f"changed file); try again, or {manual_help(spec, folder)}")
        os.replace(partial, target)
    return folder / _file_name(spec.urls[0]) if len(spec.urls) == 1 else folder
