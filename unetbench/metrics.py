"""Segmentation metrics from a confusion matrix accumulated on the device.

    cm = ConfusionMatrix(num_classes=13, device=device, ignore_index=IGNORE_INDEX)   # unetbench.dataset
    cm.update(logits.argmax(1), labels)      # no host sync: stays on the device
    summary = summarize(cm.read(), class_names)   # one device->host copy, once per epoch

Convention for classes absent from both the ground truth and the prediction of a split: their
IoU, precision, recall and F1 are undefined, reported as null, and left out of every mean. A
class present in one but not the other scores 0 where its denominator is non-zero. Precision
alone is null for a class that was never predicted (0/0), and recall for a class never present.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


class ConfusionMatrix:
    """rows = ground truth, columns = prediction; int64 counts on the device."""

    def __init__(self, num_classes: int, device: torch.device | str, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # One extra bin collects ignored pixels, so no boolean masking (which needs a host sync
        # to learn the result size). torch.bincount syncs too (it reads the max on CUDA), and
        # scatter_add_ into n*n bins serialises on atomics; histc with a fixed range asks the host
        # nothing. (CUDA's histc counts in shared memory only for small histograms; from about
        # 100 bins, i.e. 10 classes and more, it uses global-memory atomics: still no host sync,
        # and n*n bins spread the atomics thinly enough for the update to stay a tiny share of a
        # step, which the benchmark reports as "metrics share".) One implementation for every
        # backend, so all of them count the same way.
        self._bins = torch.zeros(num_classes * num_classes + 1, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        target = target.reshape(-1).long()
        prediction = prediction.reshape(-1).long()
        n = self.num_classes
        valid = (target >= 0) & (target < n)
        if self.ignore_index is not None:
            valid &= target != self.ignore_index
        index = torch.where(valid, target * n + prediction, torch.full_like(target, n * n))
        # Bins are centred on the integers: bin k spans [k - 0.5, k + 0.5). histc computes the bin
        # of a value in float32; with edges on the integers (min=0) a value k sits exactly on its
        # bin's lower edge and rounding puts some k into bin k-1 (from 66 classes on: wrong
        # counts). Half a bin away from every edge, rounding cannot move a value: exact for
        # every n up to 255 (tests/test_metrics.py checks 66, 150 and 255 cell by cell).
        # float32 counts are exact up to 2**24, so count in chunks of that size; totals are int64.
        bins = n * n + 1
        for chunk in index.split(2**24):
            self._bins += torch.histc(chunk.float(), bins=bins, min=-0.5, max=bins - 0.5).long()

    def add_(self, counts: torch.Tensor) -> None:
        """Add another matrix (e.g. restored from a checkpoint), shape (n, n)."""
        self._bins[:-1] += counts.to(self._bins.device).reshape(-1)

    def tensor(self) -> torch.Tensor:
        """The (n, n) counts, still on the device (for all-reduce)."""
        return self._bins[:-1].view(self.num_classes, self.num_classes)

    def read(self) -> np.ndarray:
        """Copy to the host: the one synchronising read of an epoch."""
        return self.tensor().cpu().numpy()

    def reset(self) -> None:
        self._bins.zero_()


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def _or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def summarize(confusion: np.ndarray, class_names: Sequence[str] | None = None) -> dict:
    """Accuracy, mean IoU/precision/recall/F1 (macro over classes present) and per-class values."""
    cm = np.asarray(confusion, dtype=np.float64)
    n = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    tp = np.diag(cm)
    support = cm.sum(axis=1)        # ground-truth pixels per class
    predicted = cm.sum(axis=0)      # predicted pixels per class
    present = (support + predicted) > 0

    iou = _ratio(tp, support + predicted - tp)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    # A class seen only in the truth was never predicted: precision is 0/0, but it still counts
    # as a miss for the macro mean, so it enters as 0 there (as scikit-learn's zero_division=0).
    precision_for_mean = np.where(present & np.isnan(precision), 0.0, precision)
    recall_for_mean = np.where(present & np.isnan(recall), 0.0, recall)

    total = cm.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else None,
        "miou": _nanmean(np.where(present, iou, np.nan)),
        "precision": _nanmean(np.where(present, precision_for_mean, np.nan)),
        "recall": _nanmean(np.where(present, recall_for_mean, np.nan)),
        "f1": _nanmean(np.where(present, f1, np.nan)),
        "per_class": [
            {
                "id": c,
                "name": names[c],
                "iou": _or_none(iou[c]),
                "precision": _or_none(precision[c]),
                "recall": _or_none(recall[c]),
                "f1": _or_none(f1[c]),
                "support": int(support[c]),
            }
            for c in range(n)
        ],
    }
