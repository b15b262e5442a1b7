"""Made-up time-to-target and overlay data on top of results_fixtures' results.

Use::

    from report_fixtures import with_quality, write_overlays_for
    res = with_quality(make_result("cuda", seed=1), target=0.5, time_s=61.0)   # None: not reached
    write_overlays_for(tmp_path, res, accuracy=0.9)   # overlays_<run>.npz in unetbench/core/overlay_file.py's format

The overlay images are a fixed synthetic scene (the same for every run, as the real test
indices are); a run's predictions are the truth with a share of its pixels changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetbench.core.overlay_file import image_iou, overlays_path

INDICES = [2, 5, 9]
SIZE = (48, 64)
COLOURS = [[0, 0, 0], [128, 64, 128], [0, 0, 142], [220, 20, 60], [70, 130, 180]]


def with_quality(result: dict, target: float, time_s: float | None, eval_every: int | None = None) -> dict:
    curve = [{"epoch": h["epoch"], "step": 10, "elapsed_s": h["elapsed_s"], "val_miou": h["val_miou"]}
             for h in result["history"]]
    result["quality"] = {"target_miou": target, "eval_every": eval_every, "stop_at_target": False,
                         "reached": time_s is not None, "time_to_target_s": time_s,
                         "target_epoch": 1 if time_s is not None else None, "target_step": 10 if time_s else None,
                         "curve": curve}
    return result


def _scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = SIZE
    labels = np.zeros(SIZE, np.uint8)
    labels[h // 2:] = 1                       # road
    labels[: h // 3] = 4                      # sky
    labels[h // 2: h // 2 + 10, 10 + 5 * i: 30 + 5 * i] = 2   # a car
    images = (np.array(COLOURS, np.uint8)[labels] * 0.8 + 20).astype(np.uint8)
    return images, labels


def write_overlays_for(folder: str | Path, result: dict, accuracy: float = 0.9, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    scenes = [_scene(i) for i in range(len(INDICES))]
    images = np.stack([s[0] for s in scenes])
    labels = np.stack([s[1] for s in scenes])
    predictions = labels.copy()
    wrong = rng.random(labels.shape) > accuracy
    predictions[wrong] = rng.integers(0, len(COLOURS), size=int(wrong.sum()))
    ious = [image_iou(p, t, len(COLOURS), None) for p, t in zip(predictions, labels)]
    path = overlays_path(folder, result["run_name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, labels=labels, predictions=predictions, indices=np.array(INDICES),
                        iou=np.array(ious), colours=np.array(COLOURS, np.uint8), ignore_index=np.array(-1))
    result["overlays"] = {"file": path.name, "indices": INDICES, "iou": ious, "split_seed": 0}
    return path
