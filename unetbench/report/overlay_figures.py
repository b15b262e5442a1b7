"""The report's prediction overlays: per test image, input, ground truth, each group's prediction
with its IoU, and where the groups disagree.

Usage::

    from unetbench.report.overlay_figures import write_overlay_figures
    paths = write_overlay_figures(comp, "report/plots")   # {"overlay_1": Path(...), ...} or {}

Each training run saved overlays_<run>.npz beside its results: the same test indices on every
backend, so the comparison needs no device; its format is unetbench/core/overlay_file.py's, read
with numpy alone, so it needs no torch either. One run per group is shown (its first); groups
whose files hold other images (another dataset) are left out and named in the log. The disagreement panel marks in red the pixels where the groups' predictions
differ (with one group: where it differs from the ground truth).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core.overlay_file import load_overlays
from .compare import Comparison

log = logging.getLogger(__name__)


def _load(comp: Comparison) -> list[tuple[str, dict]]:
    """(group label, overlay arrays) for the first run of each group that has overlays."""
    found = []
    for g in comp.groups:
        for r in g.runs:
            entry = (r.data or {}).get("overlays") or {}
            path = r.path.parent / entry["file"] if entry.get("file") else None
            if path is None:
                continue
            if not path.is_file():
                log.warning("overlays %s, named in %s, is missing; left out", path, r.path)
                continue
            try:
                found.append((g.label, load_overlays(path)))
            except (OSError, ValueError, KeyError) as err:
                log.warning("overlays %s unreadable (%s); left out", path, err)
                continue
            break
    if not found:
        return []
    reference = found[0][1]
    same = [(label, d) for label, d in found if np.array_equal(d["indices"], reference["indices"])
            and d["images"].shape == reference["images"].shape]
    for label, _ in found:
        if label not in {s[0] for s in same}:
            log.warning("overlays of %s show other test images (another dataset?); left out", label)
    return same


def _colour(labels: np.ndarray, colours: np.ndarray, ignore: int) -> np.ndarray:
    table = np.zeros((256, 3), np.uint8)
    table[:len(colours)] = colours
    out = table[labels]
    if ignore >= 0:
        out[labels == ignore] = (0, 0, 0)
    return out


def _disagreement(image: np.ndarray, predictions: list[np.ndarray], label: np.ndarray) -> tuple[np.ndarray, float]:
    grey = image.mean(axis=2, keepdims=True).repeat(3, axis=2) * 0.6
    stack = np.stack(predictions if len(predictions) > 1 else [predictions[0], label])
    differ = (stack != stack[0]).any(axis=0)
    grey[differ] = (230, 30, 30)
    return grey.astype(np.uint8), float(differ.mean())


def write_overlay_figures(comp: Comparison, folder: str | Path) -> dict[str, Path]:
    sets = _load(comp)
    if not sets:
        return {}
    from .plots import _plt, _save  # matplotlib only when drawing
    plt = _plt()
    ref = sets[0][1]
    ignore = int(ref["ignore_index"])
    height, width = ref["images"].shape[1:3]
    panels = 3 + len(sets)
    paths = {}
    for i, index in enumerate(ref["indices"]):
        fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.6 * height / width + 0.6))
        preds = [d["predictions"][i] for _, d in sets]
        shown = [(ref["images"][i], f"input (test #{int(index)})"),
                 (_colour(ref["labels"][i], ref["colours"], ignore), "ground truth")]
        for (label, d), pred in zip(sets, preds):
            iou = float(d["iou"][i])
            shown.append((_colour(pred, ref["colours"], ignore), f"{label}\nIoU {iou:.3f}" if iou == iou else label))
        disagree, share = _disagreement(ref["images"][i], preds, ref["labels"][i])
        what = "groups disagree" if len(sets) > 1 else "differs from truth"
        shown.append((disagree, f"{what}: {100 * share:.1f}%"))
        for ax, (picture, title) in zip(axes, shown):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(title, fontsize=10)
            ax.axis("off")
        paths[f"overlay_{i + 1}"] = _save(plt, fig, Path(folder) / f"overlay_{i + 1}.png")
    return paths
