"""Checksums of the prepared arrays, computed only when a file changed (size or mtime).

    hashed = verify_changed_arrays(splits)   # UserError naming a file whose sha256 no longer matches

The split file records each array's sha256 (docs/dataset_format.md). Hashing every array at
every start would cost seconds to minutes on a large dataset, so the size and modification
time of each verified file are kept in DATA/.verified.json: an unchanged file is trusted, a
changed one (labels edited after preparation, a copy gone wrong) is hashed again and refused
when it differs. Used by the trainer, the preflight and prepare's "up to date" check. A
read-only dataset folder only means the hashing is repeated next time.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.atomic import atomic_write_json
from ..core.errors import UserError
from .prepared import (
    ARRAY_NDIM,
    REPREPARE,
    SPLITS,
    Splits,
    check_array_file,
    open_array,
    sha256_file,
)

STAMP = ".verified.json"


def verify_changed_arrays(splits: Splits) -> list[str]:
    """Check every array's size, and when it changed since last verified its sha256 (where the
    split file has one) and, for labels, that every value is a class or the ignore index;
    returns the files read."""
    stamp_path = splits.path.parent / STAMP
    try:
        stamps = json.loads(stamp_path.read_text(encoding="utf-8"))
        stamps = stamps if isinstance(stamps, dict) else {}
    except (OSError, ValueError):
        stamps = {}
    hashed = []
    for split in SPLITS:
        for kind in ARRAY_NDIM:
            check_array_file(splits, split, kind)   # header, shape and byte size first: cheap
            entry = splits.meta["splits"][split][kind]
            expected = entry.get("sha256")
            path = splits.array_path(split, kind)
            st = path.stat()
            now = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": expected}
            if stamps.get(entry["file"]) == now:
                continue
            if expected and sha256_file(path) != expected:
                raise UserError(f"{path.name} changed after preparation (its sha256 differs from the one in "
                                f"{splits.path.name}, e.g. labels edited or a copy gone wrong); {REPREPARE}")
            if kind == "labels":   # arrays written by hand carry no sha256: their labels are read once
                check_label_values(splits, split)
            stamps[entry["file"]] = now
            hashed.append(entry["file"])
    if hashed:
        try:
            atomic_write_json(stamp_path, stamps)
        except UserError:
            pass   # a read-only dataset: verified again next time
    return hashed


def check_label_values(splits: Splits, split: str, chunk_rows: int = 64) -> None:
    """Every label of ``split`` is a class id below num_classes or the ignore_index: a label
    beyond them would stop the training at its first batch with an index error (on a GPU, a
    device-side assert). Read in chunks of rows: uint8 comparisons, no copy of the array."""
    n, ignore = splits.num_classes, splits.ignore_index
    labels = open_array(splits, split, "labels")
    for start in range(0, len(labels), chunk_rows):
        block = np.asarray(labels[start:start + chunk_rows])
        bad = block >= n
        if ignore is not None:
            bad &= block != ignore
        if bad.any():
            values = sorted(int(v) for v in np.unique(block[bad]))[:5]
            row = start + int(np.argmax(bad.reshape(len(block), -1).any(axis=1)))
            raise UserError(f"{splits.array_path(split, 'labels').name}: sample {row} has label value(s) "
                            f"{values}, but {splits.path.name} has {n} classes (ids 0-{n - 1})"
                            + (f" and ignores {ignore}" if ignore is not None else "")
                            + f"; fix num_classes and classes there, or {REPREPARE}")
