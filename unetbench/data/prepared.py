"""The prepared dataset on disk: its split file and arrays, read and checked without torch.

    splits = load_splits("data/dataset_splits.json")   # UserError naming the fix when it is not usable
    splits.num_classes, splits.crop, splits.counts()
    print(verify_arrays(splits, checksums=True))        # sizes (and sha256) of every array

The one definition of the format (docs/dataset_format.md): prepare writes it, training reads
it (unetbench/data/loaders.py) and the preflight checks it, all through this module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import UserError

FORMAT = "unetbench-dataset"
FORMAT_VERSION = 1
SPLITS_FILE = "dataset_splits.json"
SPLITS = ("train", "val", "test")
IGNORE_INDEX = 255          # labels are uint8; this value marks pixels no metric or loss counts
ARRAY_NDIM = {"images": 4, "labels": 3}   # (N, H, W, 3) and (N, H, W), both uint8
REPREPARE = "re-run prepare_dataset.py --force"


@dataclass(frozen=True)
class Splits:
    path: Path
    meta: dict
    sha256: str

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def class_names(self) -> list:
        return [c["name"] for c in self.meta["classes"]]

    @property
    def ignore_index(self) -> int | None:
        return self.meta.get("ignore_index")

    @property
    def crop(self) -> tuple:
        return int(self.meta["crop"]["height"]), int(self.meta["crop"]["width"])

    def counts(self) -> dict:
        return {name: int(self.meta["splits"][name]["count"]) for name in SPLITS}

    def array_path(self, split: str, kind: str) -> Path:
        return self.path.parent / self.meta["splits"][split][kind]["file"]

    @property
    def dataset_name(self) -> str:
        """The registered dataset it was prepared from (kvasir-seg...), "synthetic", or "custom"."""
        entry = self.meta.get("dataset")
        if isinstance(entry, dict) and entry.get("name"):
            return entry["name"]
        return "synthetic" if (self.meta.get("source") or {}).get("kind") == "synthetic" else "custom"

    def identity(self) -> dict:
        """What the results record so that runs on different data are never compared."""
        return {"name": self.dataset_name, "resize": (self.meta.get("resize") or {}).get("policy", "none"),
                "splits_file": str(self.path), "splits_sha256": self.sha256,
                "fingerprint": self.meta.get("fingerprint"), "num_classes": self.num_classes,
                "class_names": self.class_names, "crop": list(self.crop), "counts": self.counts(),
                "ignore_index": self.ignore_index}


def load_splits(path: str | Path) -> Splits:
    path = Path(path)
    hint = "run prepare_dataset.py first (or pass --splits PATH)"
    if path.is_dir():
        inside = path / SPLITS_FILE
        fix = f"pass {inside}" if inside.is_file() else hint
        raise UserError(f"--splits {path} is a folder; the split file is the {SPLITS_FILE} inside a prepared "
                        f"dataset folder: {fix}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"dataset split file {path} not found; {hint}") from None
    except OSError as err:
        raise UserError(f"cannot read dataset split file {path}: {err.strerror}") from None
    try:
        meta = json.loads(raw)
    except UnicodeDecodeError:   # not text at all: an array, an image, an archive
        raise UserError(f"dataset split file {path} is not a text file (binary data, e.g. one of the dataset's "
                        f".npy arrays); pass the {SPLITS_FILE} of a prepared dataset folder") from None
    except json.JSONDecodeError as err:
        raise UserError(f"dataset split file {path} is not valid JSON ({err}); {hint} with --force") from None
    if isinstance(meta, dict) and "schema_version" in meta and "status" in meta:
        raise UserError(f"{path} is a training results file, not a dataset split file; pass the "
                        f"{SPLITS_FILE} that prepare_dataset.py wrote (e.g. data/{SPLITS_FILE})")
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise UserError(f"dataset split file {path} has format version {found!r}, this suite reads "
                        f"{FORMAT_VERSION}; {REPREPARE}")
    for key in ("num_classes", "classes", "crop", "splits"):
        if key not in meta:
            raise UserError(f"dataset split file {path} lacks {key!r}; {REPREPARE}")
    missing = [s for s in SPLITS if s not in meta["splits"]]
    if missing:
        raise UserError(f"dataset split file {path} has no {', '.join(missing)} split; re-run prepare_dataset.py")
    from .split_file_types import (
        check_split_fields,  # the fields' types and ranges, each named
    )
    check_split_fields(meta, path, SPLITS, REPREPARE)
    return Splits(path=path, meta=meta, sha256=hashlib.sha256(raw).hexdigest())


def open_array(splits: Splits, split: str, kind: str) -> np.ndarray:
    """One split's images or labels, memory-mapped, after the size check (a truncated file
    would otherwise fail mid-epoch, or not at all)."""
    path = splits.array_path(split, kind)
    check_array_file(splits, split, kind)
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise UserError(f"dataset array {path} is unreadable ({err}); {REPREPARE}") from None


def check_array_file(splits: Splits, split: str, kind: str, checksum: bool = False) -> None:
    """Header, shape, dtype and byte size against the split file; sha256 too when asked."""
    entry = splits.meta["splits"][split][kind]
    path = splits.array_path(split, kind)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fh)
            offset = fh.tell()
    except FileNotFoundError:
        raise UserError(f"{split} {kind}: {path} missing; {REPREPARE}") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path.name}: unreadable ({err}); {REPREPARE}") from None
    expected_shape = entry.get("shape")
    if (dtype != np.uint8 or len(shape) != ARRAY_NDIM[kind]
            or (expected_shape is not None and list(shape) != list(expected_shape))):
        raise UserError(f"{path.name}: shape {list(shape)} {dtype}, split file says {expected_shape} uint8; {REPREPARE}")
    expected = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        raise UserError(f"{path.name}: {size} bytes, expected {expected} (truncated?); {REPREPARE}")
    if checksum and sha256_file(path) != entry.get("sha256"):
        raise UserError(f"{path.name}: sha256 differs from the split file (changed after preparation?); {REPREPARE}")


def verify_arrays(splits: Splits, checksums: bool = False) -> str:
    """Check every array of every split; a one-line summary, or a UserError naming the file."""
    total = 0
    for name in SPLITS:
        split = splits.meta["splits"][name]
        for kind in ARRAY_NDIM:
            check_array_file(splits, name, kind, checksum=checksums)
        rows = split["images"]["shape"][0]
        if split["count"] != rows or split["labels"]["shape"][0] != rows:
            raise UserError(f"{name}: count {split['count']} but {rows} rows; {REPREPARE}")
        total += split["count"]
    h, w = splits.crop
    how = "sizes and checksums" if checksums else "sizes, checksums of changed files; --full for all"
    return f"{len(SPLITS)} splits, {total} crops of {h}x{w}, {splits.num_classes} classes ({how})"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
