"""Prediction overlays: the best checkpoint's predictions on a few fixed test images.

    python3 unet_cpu.py --overlay-images 6       # default 6; 0 writes none
    data = load_overlays("results/overlays_cpu.npz")   # the report reads them back

At the end of a run the trainer calls ``write_overlays`` (rank 0, model holding the best
weights). The images are the same for every backend and every repeat: indices of the test
split drawn from the split file's own seed, not the training seed. The file
OUT/overlays_<run>.npz (compressed, uint8) holds the input crops, ground truth, predictions,
indices, per-image IoU and the class colours, so the comparison job draws them with no device.
The results file records where it is and the per-image IoU ("overlays").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.atomic import atomic_path


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


@torch.no_grad()
def write_overlays(trainer) -> dict | None:
    """Predict the fixed test images with the model as it is (the best weights, after _test)
    and save them; the results' "overlays" entry, or None when none are asked for."""
    k, splits, test = trainer.s.overlay_images, trainer.splits, trainer.data["test"]
    if not k or not len(test) or not trainer.dist.is_main:
        return None
    indices = choose_indices(len(test), k, int(splits.meta.get("seed", 0)))
    images = np.asarray(test.images[indices])
    labels = np.asarray(test.labels[indices])
    x, _ = trainer.transform(torch.from_numpy(images), torch.from_numpy(labels))
    trainer.model.eval()  # the plain model (eager): a new batch shape costs no recompilation
    with trainer.backend.autocast():
        logits = trainer.model(x)
    trainer.backend.step_boundary()
    predictions = logits.argmax(1).to(torch.uint8).cpu().numpy()
    ious = [image_iou(p, t, splits.num_classes, splits.ignore_index) for p, t in zip(predictions, labels)]
    colours = np.array([c.get("color") or [0, 0, 0] for c in splits.meta["classes"]], dtype=np.uint8)
    path = overlays_path(trainer.out, trainer.run_name)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=labels, predictions=predictions,
                                indices=np.array(indices), iou=np.array([np.nan if v is None else v for v in ious]),
                                colours=colours, ignore_index=np.array(-1 if splits.ignore_index is None
                                                                       else splits.ignore_index))
    return {"file": path.name, "indices": indices, "iou": ious, "split_seed": int(splits.meta.get("seed", 0))}


def load_overlays(path: str | Path) -> dict:
    """The arrays of an overlays file (numpy), as write_overlays saved them."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
