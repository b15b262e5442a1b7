"""What a registered dataset adds to a plan beyond its layout: fixed mask encodings and classes,
official split lists, and the stray files it is known to ship (used by plan_files.py).

    kind, classes = fixed_encoding(spec)                 # ("trimap", [(0, "background", rgb), ...]) or None
    groups = official_groups(reader, pairs, spec)        # ["trainval", "test", ...] per pair, or None
    strays = known_strays(reader, pairs, spec)           # [{"image": "images/x.mat", ...}] reported, not fatal

Kvasir-SEG's masks are thresholded (2 classes); Oxford-IIIT Pet's trimaps map 1 pet, 2 background,
3 border to classes 1, 0, 2, and its annotations/trainval.txt and test.txt (lines "NAME CLASS SPECIES
BREED", # comments) give the official test split; train and validation are drawn from trainval.
"""

from __future__ import annotations

import logging
import posixpath
from typing import List, Optional

from ...core.errors import UserError
from ...core.registry import DatasetSpec
from .classes import generic_table

log = logging.getLogger("unetbench.data.prepare")

OFFICIAL_GROUPS = ("trainval", "test")
# Class colours for overlays and the split file (black background, the rest distinct).
COLOURS = {"background": (0, 0, 0), "polyp": (255, 255, 255), "pet": (220, 20, 60), "border": (255, 215, 0)}


def fixed_encoding(spec: Optional[DatasetSpec]):
    """(encoding, classes) the entry fixes, or None when the palette/detection decides."""
    if spec is None or not spec.encoding:
        return None
    table = generic_table(len(spec.class_names))
    classes = [(cid, name, COLOURS.get(name, colour)) for (cid, _, colour), name in zip(table, spec.class_names)]
    return spec.encoding, classes


def _layout_parent(path: str, depth: int) -> str:
    for _ in range(depth):
        path = posixpath.dirname(path)
    return path


def official_groups(reader, pairs, spec: Optional[DatasetSpec]) -> Optional[List[str]]:
    """Each pair's official group ("trainval" or "test"), or None when the entry has no lists."""
    if spec is None or not spec.split_lists or not pairs:
        return None
    parent = _layout_parent(pairs[0].image, 2)      # <parent>/images/NAME.jpg
    names = {}
    for group, rel in zip(OFFICIAL_GROUPS, spec.split_lists):
        path = posixpath.join(parent, rel) if parent else rel
        try:
            text = reader.read(path).decode("utf-8", errors="replace")
        except (OSError, KeyError):
            raise UserError(f"the {spec.title} source has no {path}, its official {group} list; extract "
                            "annotations.tar.gz next to images/ (or pass --split-by image to split at random)") from None
        for line in text.splitlines():
            if line.strip() and not line.startswith("#"):
                names[line.split()[0]] = group
    groups = [names.get(posixpath.splitext(posixpath.basename(p.image))[0]) for p in pairs]
    unlisted = sum(g is None for g in groups)
    if unlisted:
        log.info("%d pair(s) are in neither official list; they join trainval", unlisted)
    return [g or "trainval" for g in groups]


def known_strays(reader, pairs, spec: Optional[DatasetSpec]) -> List[dict]:
    """Non-image files in the image folder of a dataset known to ship them: skipped, reported."""
    if spec is None or not spec.odd_files_skipped or not pairs:
        return []
    from .sources import stray_files
    folder = posixpath.dirname(pairs[0].image)
    strays = stray_files(reader, folder)
    if strays:
        log.warning("skipping %d non-image file(s) in %s/ (first: %s); listed in the split file", len(strays),
                    folder, ", ".join(strays[:3]))
    return [{"image": s, "mask": None, "reason": "not an image (a stray file the dataset ships)"} for s in strays]
