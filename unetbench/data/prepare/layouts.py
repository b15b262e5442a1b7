"""Find image/mask folder pairs in a source and pair their files by relative stem.

Use::

    pairs, unmatched, found = find_pairs(["dataA/dataA/CameraRGB/a.png", "dataA/dataA/CameraSeg/a.png"])
    pairs[0].image, pairs[0].mask, pairs[0].group       # group "dataA" (for --split-by folder)
    folder_layouts(files)                                # {("camerargb", "cameraseg")}

A pair of sibling folders with known names (the registered datasets' layouts, _out/_out_seg_city
and CameraRGB/CameraSeg, then generic ones: images/masks, rgb/seg, ...; any case) at any depth
forms one layout root: the lyft ``dataA/CameraRGB`` and the Kaggle archive's
``dataA/dataA/CameraRGB`` nestings both work, as do several roots in one source. Inside the two
folders, ``sub/x.png`` pairs with ``sub/x.<any ext>`` (a mask may also end in _mask, _seg, _label or
_gt). A file without its partner in the other folder is returned as unmatched (its path and the
reason name both folders), and so are files of one name with two extensions (a.png and a.jpg:
which one pairs is a guess); plan_files refuses those unless --skip-bad.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple

from ...core.registry import DATASETS

# (image folder, mask folder), lower case, in order of preference when several match: the
# registered datasets' own layouts first, then generic names
FOLDER_PAIRS: List[Tuple[str, str]] = [(spec.layout[0].lower(), spec.layout[1].lower())
                                        for spec in DATASETS.values() if spec.layout] + [
    ("images", "masks"), ("images", "labels"), ("images", "annotations"), ("images", "segmentations"),
    ("images", "seg"), ("image", "mask"), ("image", "label"), ("image", "masks"), ("imgs", "masks"),
    ("img", "mask"), ("img", "masks"), ("img", "seg"), ("img", "gt"), ("rgb", "seg"),
    ("rgb", "semantic"), ("rgb", "segmentation"), ("rgb", "masks"), ("rgb", "labels"),
]
FOLDER_PAIRS = list(dict.fromkeys(FOLDER_PAIRS))    # a registered layout may also be a generic one
MASK_SUFFIXES = ("_mask", "_seg", "_label", "_labels", "_gt", "-mask")


@dataclass(frozen=True)
class Pair:
    image: str          # path relative to the source root
    mask: str
    group: str          # the source folder it belongs to (for --split-by folder)


def _stem(rel: str) -> str:
    return posixpath.splitext(rel)[0]


def _roots(files: Sequence[str]) -> Dict[Tuple[str, str], str]:
    """(parent, image folder) -> mask folder, for every layout root in ``files`` (actual names)."""
    # every folder that holds files, by (parent, lower-case name) -> actual name
    folders: Dict[Tuple[str, str], str] = {}
    for rel in files:
        parts = rel.split("/")
        for i in range(len(parts) - 1):
            folders.setdefault(("/".join(parts[:i]), parts[i].lower()), parts[i])
    roots: Dict[Tuple[str, str], str] = {}
    for img_name, mask_name in FOLDER_PAIRS:
        for (parent, low), actual in folders.items():
            if low == img_name and (parent, actual) not in roots:
                mask_dir = _nested(folders, parent, mask_name)
                if mask_dir is not None:
                    roots[(parent, actual)] = mask_dir
    return roots


def _nested(folders: Dict[Tuple[str, str], str], parent: str, path: str):
    """The actual spelling of folder ``path`` (lower case, may be nested: annotations/trimaps)
    under ``parent``, or None when it is not there."""
    found = []
    for part in path.split("/"):
        actual = folders.get((parent, part))
        if actual is None:
            return None
        found.append(actual)
        parent = posixpath.join(parent, actual) if parent else actual
    return "/".join(found)


def layout_parents(files: Sequence[str]) -> Set[str]:
    """The names (lower case) of the folders that hold a layout root, e.g. {"kvasir-seg"}."""
    return {posixpath.basename(parent).lower() for parent, _ in _roots(files)}


def folder_layouts(files: Sequence[str]) -> Set[Tuple[str, str]]:
    """The (image folder, mask folder) name pairs of FOLDER_PAIRS found in ``files``, lower case."""
    return {(img.lower(), mask.lower()) for (_, img), mask in _roots(files).items()}


def _by_stem(files: Sequence[str], prefix: str, kind: str, unmatched: List[dict]) -> Dict[str, str]:
    """The files under ``prefix`` by stem. Two files of one stem (a.png and a.jpg) cannot be
    paired without guessing: neither is used, and both are returned as unmatched."""
    found: Dict[str, List[str]] = {}
    for f in files:
        if f.startswith(prefix):
            found.setdefault(_stem(f[len(prefix):]), []).append(f)
    for stem, same in found.items():
        if len(same) > 1:
            names = ", ".join(posixpath.basename(f) for f in sorted(same))
            for f in sorted(same):
                unmatched.append({"image": f if kind == "image" else None, "mask": f if kind == "mask" else None,
                                  "reason": f"{len(same)} {kind}s named {prefix}{stem}.* ({names}): which one "
                                            "belongs to the pair is ambiguous; remove or rename the others"})
    return {stem: same[0] for stem, same in found.items() if len(same) == 1}


def find_pairs(files: Sequence[str]) -> Tuple[List[Pair], List[dict], List[str]]:
    """-> (pairs sorted by image path, unmatched [{"image", "mask", "reason"}], folder pairs found)."""
    roots = _roots(files)
    pairs: List[Pair] = []
    unmatched: List[dict] = []
    for (parent, img_dir), mask_dir in sorted(roots.items()):
        img_prefix = posixpath.join(parent, img_dir) + "/"
        mask_prefix = posixpath.join(parent, mask_dir) + "/"
        images = _by_stem(files, img_prefix, "image", unmatched)
        masks = _by_stem(files, mask_prefix, "mask", unmatched)
        used_masks = set()
        group = parent.split("/")[0] if parent else img_dir
        for stem in sorted(images):
            mask = masks.get(stem)
            if mask is None:
                for suffix in MASK_SUFFIXES:
                    if stem + suffix in masks:
                        mask = masks[stem + suffix]
                        break
            if mask is None:
                unmatched.append({"image": images[stem], "mask": None,
                                  "reason": f"image without mask (no {mask_prefix}{stem}.*)"})
                continue
            used_masks.add(mask)
            sub = stem.split("/")
            pairs.append(Pair(images[stem], mask, group if parent or len(sub) == 1 else sub[0]))
        for stem, mask in sorted(masks.items()):
            if mask not in used_masks:
                unmatched.append({"image": None, "mask": mask,
                                  "reason": f"mask without image (no {img_prefix}{stem}.*)"})
    found = [f"{posixpath.join(p, i)} + {m}" for (p, i), m in sorted(roots.items())]
    pairs.sort(key=lambda p: p.image)
    return pairs, unmatched, found


def describe_folders(files: Sequence[str], limit: int = 6) -> str:
    """A short list of the folders that hold images, for the 'no pairs found' message."""
    dirs = sorted({posixpath.dirname(f) or "." for f in files})
    shown = ", ".join(dirs[:limit]) + (f" and {len(dirs) - limit} more" if len(dirs) > limit else "")
    return shown or "none"
