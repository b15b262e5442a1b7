"""The overlays file: its name, its contents, read and written with numpy alone.

    path = overlays_path("results", "cpu")               # results/overlays_cpu.npz
    indices = choose_indices(len(test), 6, split_seed)   # the same test images on every backend
    write_overlay_file(path, images=..., labels=..., predictions=..., indices=..., iou=..., colours=...,
                       ignore_index=splits.ignore_index)
    arrays = load_overlays(path)                         # {"images": ..., "predictions": ..., ...}

A training run predicts a few fixed test images with its best weights and saves them here
(unetbench/training/overlays.py does the predicting); the report draws them
(unetbench/report/overlay_figures.py). Why a module of its own, in core: the report runs on a
login node, where torch may be missing or slow to import, and needs only this.

The file, OUT/overlays_<run>.npz (compressed, uint8 images and labels):

    images       N x H x W x 3   the input crops
    labels       N x H x W       ground truth (class ids; ignore_index where ignored)
    predictions  N x H x W       the model's class ids
    indices      N               their indices in the test split (choose_indices)
    iou          N               per-image mean IoU (NaN: no class present)
    colours      C x 3           each class's colour, from the split file
    ignore_index ()              the ignored label, -1 when none
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import atomic_path


def overlays_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"overlays_{run_name}.npz"


def choose_indices(count: int, k: int, seed: int) -> list[int]:
    """k test indices (sorted) from the split file's seed: the same on every backend."""
    k = min(k, count)
    return sorted(int(i) for i in np.random.default_rng(seed).choice(count, size=k, replace=False))


def image_iou(prediction: np.ndarray, label: np.ndarray, num_classes: int, ignore: int | None) -> float | None:
    """Mean IoU over the classes present in the label or the prediction of one image."""
    keep = label != ignore if ignore is not None else np.ones(label.shape, bool)
    p, t = prediction[keep], label[keep]
    ious = []
    for c in range(num_classes):
        union = np.count_nonzero((p == c) | (t == c))
        if union:
            ious.append(np.count_nonzero((p == c) & (t == c)) / union)
    return float(np.mean(ious)) if ious else None


def write_overlay_file(path: Path, *, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                       indices: Sequence[int], iou: Sequence[float | None], colours: np.ndarray,
                       ignore_index: int | None) -> None:
    """Save the arrays above atomically (a reader sees the old file or the new one)."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=labels, predictions=predictions,
                                indices=np.array(indices), iou=np.array([np.nan if v is None else v for v in iou]),
                                colours=np.asarray(colours, dtype=np.uint8),
                                ignore_index=np.array(-1 if ignore_index is None else ignore_index))


def load_overlays(path: str | Path) -> dict:
    """The arrays of an overlays file, as write_overlay_file saved them. A truncated or
    corrupt file raises ValueError naming it (numpy passes on zipfile's and zlib's own errors)."""
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is not a complete overlays file ({err}); the run that wrote it may have "
                         "been cut off: run it again to redraw its overlays") from None
