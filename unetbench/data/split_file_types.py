"""The types and ranges of a split file's fields, checked when it is loaded (prepared.load_splits),
so that a hand-edited or foreign file is refused naming the field, not with a KeyError or a
TypeError deep in the training.

    check_split_fields(meta, path, SPLITS, REPREPARE)   # UserError "dataset split file P: splits.val.count must be ..."
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import UserError

LABEL_VALUES = 256   # labels are uint8


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_split_fields(meta: dict, path: Path, splits, fix: str) -> None:
    """``splits``: the split names (dataset.SPLITS); ``fix``: what to do about a bad field."""
    def bad(field: str, rule: str, value) -> UserError:
        return UserError(f"dataset split file {path}: {field} must be {rule}, got {value!r}; {fix}")

    n = meta["num_classes"]
    if not _whole(n) or not 1 <= n < LABEL_VALUES:
        raise bad("num_classes", f"a whole number from 1 to {LABEL_VALUES - 1}", n)
    classes = meta["classes"]
    if not isinstance(classes, list) or len(classes) != n:
        raise bad("classes", f"a list of {n} classes (num_classes)", classes if not isinstance(classes, list)
                  else f"{len(classes)} classes")
    for i, entry in enumerate(classes):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise bad(f"classes[{i}]", "an object with a text name", entry)
    ignore = meta.get("ignore_index")
    if ignore is not None and (not _whole(ignore) or not n <= ignore < LABEL_VALUES):
        raise bad("ignore_index", f"null or a label value from {n} (num_classes) to {LABEL_VALUES - 1}", ignore)
    crop = meta["crop"]
    for side in ("height", "width"):
        value = crop.get(side) if isinstance(crop, dict) else None
        if not _whole(value) or value < 1:
            raise bad(f"crop.{side}", "a whole number of pixels, at least 1", value)
    for name in splits:
        split = meta["splits"][name]
        if not isinstance(split, dict):
            raise bad(f"splits.{name}", "an object", split)
        if not _whole(split.get("count")) or split["count"] < 0:
            raise bad(f"splits.{name}.count", "a whole number of samples", split.get("count"))
        for kind in ("images", "labels"):
            entry = split.get(kind)
            file = entry.get("file") if isinstance(entry, dict) else None
            if not isinstance(file, str) or not file or "/" in file or "\\" in file or file.startswith("."):
                raise bad(f"splits.{name}.{kind}.file", "a file name in the split file's folder", file)
            shape = entry.get("shape")
            if shape is not None and (not isinstance(shape, list) or not all(_whole(v) and v >= 0 for v in shape)):
                raise bad(f"splits.{name}.{kind}.shape", "a list of whole numbers", shape)
            if entry.get("sha256") is not None and not isinstance(entry["sha256"], str):
                raise bad(f"splits.{name}.{kind}.sha256", "a hex digest", entry["sha256"])
        _check_class_counts(split, name, n, bad)


def _check_class_counts(split: dict, name: str, n: int, bad) -> None:
    """prepare_dataset.py counts each class's label pixels: a count per class, and the counts plus
    the ignored pixels make every label pixel. A file whose classes were edited afterwards
    (num_classes lowered, labels left as they were) fails here, not at the training's first batch."""
    counts = split.get("class_pixel_counts")
    if counts is None:
        return
    if not isinstance(counts, list) or len(counts) != n or not all(_whole(c) and c >= 0 for c in counts):
        raise bad(f"splits.{name}.class_pixel_counts", f"a list of {n} pixel counts (num_classes)",
                  counts if not isinstance(counts, list) else f"{len(counts)} counts")
    shape, ignored = (split.get("labels") or {}).get("shape"), split.get("ignored_pixels", 0)
    if shape and _whole(ignored):
        pixels = 1
        for side in shape:
            pixels *= side
        if sum(counts) + ignored != pixels:
            raise bad(f"splits.{name}.class_pixel_counts", f"counts that with ignored_pixels make all {pixels} "
                      "label pixels (labels outside the classes?)", f"{sum(counts) + ignored}")
