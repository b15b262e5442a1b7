"""Prediction overlays: the best checkpoint's predictions on a few fixed test images.

    python3 unet_cpu.py --overlay-images 6       # default 6; 0 writes none
    entry = write_overlays(overlays_path(out, run), 6, test, splits, model, backend, transform)

At the end of a run the trainer (rank 0, its model holding the best weights) calls
``write_overlays``; this module does the predicting, which needs torch. The file's name,
contents and reading are unetbench/core/overlay_file.py's, so that the report reads it without
torch. The images are the same for every backend and every repeat: indices of the test split
drawn from the split file's own seed, not the training seed. The results file records where the
file is and the per-image IoU ("overlays").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.overlay_file import choose_indices, image_iou, write_overlay_file
from ..models.unit import predict


@torch.no_grad()
def write_overlays(path: Path, count: int, test, splits, model: torch.nn.Module, backend, transform) -> dict | None:
    """Predict ``count`` fixed images of the ``test`` split (SplitArrays) with ``model`` as it is
    and save them to ``path``; the results' "overlays" entry, or None when none are asked for."""
    if not count or not len(test):
        return None
    split_seed = int(splits.meta.get("seed", 0))
    indices = choose_indices(len(test), count, split_seed)
    images = np.asarray(test.images[indices])
    labels = np.asarray(test.labels[indices])
    x, _ = transform(torch.from_numpy(images), torch.from_numpy(labels))
    model.eval()  # the plain model (eager): a new batch shape costs no recompilation
    with backend.autocast():
        logits = model(x)
    backend.step_boundary()
    predictions = predict(logits).to(torch.uint8).cpu().numpy()
    ious = [image_iou(p, t, splits.num_classes, splits.ignore_index) for p, t in zip(predictions, labels)]
    colours = np.array([c.get("color") or [0, 0, 0] for c in splits.meta["classes"]], dtype=np.uint8)
    write_overlay_file(path, images=images, labels=labels, predictions=predictions, indices=indices, iou=ious,
                       colours=colours, ignore_index=splits.ignore_index)
    return {"file": path.name, "indices": indices, "iou": ious, "split_seed": split_seed}
