"""Train/val/test assignment by source image, source folder or crop, reproducible from a seed.

Use::

    ratios = parse_ratios("0.7,0.15,0.15")
    assignment = split_items(n, groups, ratios, seed=42, by="image")  # {"train": [i, ...], ...}
    units = assign_crops(n, k, groups, ratios, seed=42, by="crop")    # [(item, split, crop indices), ...]

By default crops of one source image land in one split (we split source images, then crop), and
``by="folder"`` keeps whole folders together: the lyft folders dataA..dataE hold neighbouring
frames of the same drives, which a random split would leak from train into test. ``by="crop"``
assigns every crop on its own, as the seed did: crops of one image (near-duplicates, they overlap)
then land in several splits. It exists only to reproduce the seed's numbers.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from ...core.errors import UserError
from ..prepared import SPLITS

DEFAULT_RATIOS = (0.7, 0.15, 0.15)
SPLIT_BY = ("image", "folder", "crop", "official")


def parse_ratios(text) -> Tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` (or a sequence) -> three ratios; they must be >= 0, sum to 1, train > 0."""
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        raise UserError(f"--split {text!r}: expected three numbers like 0.7,0.15,0.15") from None
    if len(values) != 3:
        raise UserError(f"--split {text!r}: expected three ratios train,val,test (e.g. 0.7,0.15,0.15)")
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise UserError(f"--split {text!r}: ratios must be finite and non-negative")
    if abs(sum(values) - 1.0) > 1e-6:
        raise UserError(f"--split {text!r}: ratios sum to {sum(values):g}, they must sum to 1")
    if values[0] <= 0:
        raise UserError(f"--split {text!r}: the train ratio must be above 0")
    return values[0], values[1], values[2]


def _targets(n: int, ratios: Sequence[float]) -> List[int]:
    """Counts per split summing to n; every split with a ratio above 0 gets at least one if n allows."""
    counts = [int(round(n * r)) for r in ratios]
    counts[0] = n - counts[1] - counts[2]
    for i in (1, 2):
        if ratios[i] > 0 and counts[i] == 0 and counts[0] > 1:
            counts[i], counts[0] = 1, counts[0] - 1
    while counts[0] < 0:  # rounding pushed train below zero on a tiny set
        j = 1 if counts[1] >= counts[2] else 2
        counts[j] -= 1
        counts[0] += 1
    return counts


def split_items(n_items: int, groups: Sequence[str], ratios: Sequence[float], seed: int,
                by: str = "image") -> Dict[str, List[int]]:
    """Assign item indices 0..n-1 to splits. ``groups[i]`` is item i's folder (for ``by="folder"``);
    ``by="crop"`` treats each of the n items (crops, from assign_crops) on its own, like "image".

    Returns sorted index lists per split, so array rows follow the (sorted) source order.
    """
    rng = np.random.default_rng([int(seed), 0x5B117])
    if by == "official":    # groups are "trainval"/"test" (a dataset's own lists: prepare/datasets.py)
        test = [i for i, g in enumerate(groups) if g == "test"]
        trainval = np.array([i for i, g in enumerate(groups) if g != "test"], dtype=np.int64)
        order = trainval[rng.permutation(len(trainval))]
        share = ratios[1] / (ratios[0] + ratios[1])
        n_val = int(round(len(order) * share)) if len(order) > 1 else 0
        return {"train": sorted(order[n_val:].tolist()), "val": sorted(order[:n_val].tolist()), "test": test}
    if by in ("image", "crop"):
        order = rng.permutation(n_items)
        counts = _targets(n_items, ratios)
        bounds = np.cumsum([0] + counts)
        return {name: sorted(order[bounds[i]:bounds[i + 1]].tolist()) for i, name in enumerate(SPLITS)}
    if by not in SPLIT_BY:
        raise UserError(f"--split-by {by!r}: choose {' or '.join(SPLIT_BY)}")
    names = sorted(set(groups))
    members: Dict[str, List[int]] = {g: [] for g in names}
    for i, g in enumerate(groups):
        members[g].append(i)
    wanted = [s for s, r in zip(SPLITS, ratios) if r > 0]
    if len(names) < len(wanted):
        raise UserError(f"--split-by folder: found {len(names)} folder(s) ({', '.join(names)}) but "
                        f"{len(wanted)} splits need one each; use --split-by image or set a ratio to 0")
    targets = [n_items * r for r in ratios]
    assigned: Dict[str, List[int]] = {s: [] for s in SPLITS}
    sizes = [0, 0, 0]
    # shuffled, then largest first: each folder goes to the split furthest below its target
    shuffled = [names[i] for i in rng.permutation(len(names))]
    shuffled.sort(key=lambda g: -len(members[g]))
    empty = [i for i, r in enumerate(ratios) if r > 0]
    for k, g in enumerate(shuffled):
        remaining = len(shuffled) - k
        unfilled = [i for i in empty if sizes[i] == 0]
        if unfilled and len(unfilled) >= remaining:  # make sure no wanted split stays empty
            best = unfilled[-1]
        else:
            best = max((i for i in range(3) if ratios[i] > 0), key=lambda i: (targets[i] - sizes[i], -i))
        assigned[SPLITS[best]].extend(members[g])
        sizes[best] += len(members[g])
    return {s: sorted(v) for s, v in assigned.items()}


def assign_crops(n_items: int, crops_per_image: int, groups: Sequence[str], ratios: Sequence[float], seed: int,
                 by: str = "image") -> List[Tuple[int, str, Tuple[int, ...]]]:
    """Where each crop goes: ``(item, split, crop indices)`` per item and split that gets crops of it,
    in item order (so each split's rows follow the source order, and the crops of one item that go
    to one split are consecutive rows). With ``by`` "image" or "folder" each item has one entry
    holding all its crops; with "crop" its crops are assigned one by one.
    """
    k = crops_per_image
    if by != "crop":
        assignment = split_items(n_items, groups, ratios, seed, by)
        split_of = {i: s for s, members in assignment.items() for i in members}
        return [(i, split_of[i], tuple(range(k))) for i in range(n_items)]
    assignment = split_items(n_items * k, [], ratios, seed, "crop")
    split_of = {u: s for s, members in assignment.items() for u in members}
    units = []
    for i in range(n_items):
        for s in SPLITS:
            crops = tuple(j for j in range(k) if split_of[i * k + j] == s)
            if crops:
                units.append((i, s, crops))
    return units


def refuse_empty_splits(rows: Dict[str, int], n_items: int, ratios: Sequence[float]) -> None:
    """Every split needs samples: validation picks the best epoch and the test reports it, so a
    dataset with an empty one would train and then fail after its first epoch."""
    empty = [s for s in SPLITS if rows.get(s, 0) == 0]
    if empty:
        raise UserError(f"the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} would be empty "
                        f"({n_items} source images, --split {','.join(f'{r:g}' for r in ratios)}); every split "
                        "needs images: raise its ratio in --split, or add images")
