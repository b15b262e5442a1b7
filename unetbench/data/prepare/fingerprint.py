"""The fingerprint that makes an identical re-run a no-op.

Use::

    fp = fingerprint(settings_dict, files=[(relpath, size, mtime_ns), ...])
    if is_up_to_date(out, fp): ...

sha256 over the generator version, every setting and the source file list (paths, sizes and
modification times, not contents: hashing gigabytes of PNGs would cost more than preparing them).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterable, Optional, Tuple

from ...core.errors import UserError
from ..prepared import SPLITS_FILE

log = logging.getLogger(__name__)

# Bump when the bytes written for the same inputs change (crop sampling, synthetic renderer...).
GENERATOR_VERSION = 1


def fingerprint(settings: dict, files: Optional[Iterable[Tuple[str, int, int]]] = None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"generator": GENERATOR_VERSION, "settings": settings},
                             sort_keys=True, default=str).encode())
    for rel, size, mtime_ns in files or ():
        digest.update(f"\n{rel}\t{size}\t{mtime_ns}".encode())
    return digest.hexdigest()


def is_up_to_date(out: Path, fp: str) -> bool:
    """True if ``out`` holds a complete dataset with fingerprint ``fp``."""
    splits_file = Path(out) / SPLITS_FILE
    try:
        meta = json.loads(splits_file.read_text())
    except (OSError, ValueError):   # ValueError: not JSON, or not text (UnicodeDecodeError)
        return False
    if not isinstance(meta, dict) or meta.get("fingerprint") != fp:
        return False
    try:
        files = [Path(out) / split[key]["file"] for split in meta["splits"].values() for key in ("images", "labels")]
    except (KeyError, TypeError, AttributeError):   # fields of another shape: not one we wrote
        return False
    for path in files:
        if not path.is_file():
            log.info("%s is missing; preparing again", path)
            return False
    try:   # a truncated or changed array is not up to date (sizes always, checksums when changed)
        from ..array_stamps import verify_changed_arrays
        from ..prepared import load_splits
        verify_changed_arrays(load_splits(splits_file))
    except UserError as err:
        log.info("%s; preparing again", err)
        return False
    return True
