"""Segmentation metrics from a confusion matrix accumulated on the device.

    cm = ConfusionMatrix(num_classes=13, device=device, ignore_index=IGNORE_INDEX)   # unetbench.data.prepared
    cm.update(logits.argmax(1), labels)      # no host sync: stays on the device
    summary = summarize(cm.total(dist.all_reduce_sum), class_names)   # one device->host copy an epoch

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
    """rows = ground truth, columns = prediction; counted on the device without a host sync.

    The counts live on the device as two int32 parts, ``low + high * CARRY``, and are combined
    into int64 on the host only. int32 because lazy-mode Gaudi runs int64 as int32 on the device
    (PT_ENABLE_INT64_SUPPORT applies to eager mode only): a single int64-looking counter would
    wrap after 2**31 pixels, about 10.9k images of 384x512 in one epoch on one rank. Carrying
    every CARRY counts of ``low`` into ``high`` after each update keeps both parts far from
    the int32 limit, with elementwise ops only (no host sync, no branch)."""

    CARRY = 2**24     # low < CARRY after every update; high counts units of CARRY
    CHUNK = 2**30     # pixels counted per index_add_: low stays below CARRY + CHUNK < 2**31

    def __init__(self, num_classes: int, device: torch.device | str, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # One extra bin collects ignored pixels, so no boolean masking (which needs a host sync
        # to learn the result size). index_add_ asks the host nothing and is native on every
        # backend; torch.bincount reads the maximum on the host first, and histc was a CPU
        # fallback on Gaudi (bridge 1.17-1.19) and computes bins in float32, which misplaces
        # integers from 66 classes on. One implementation for every backend, so all of them
        # count the same way. Row 0 = low part, row 1 = high part.
        self._parts = torch.zeros(2, num_classes * num_classes + 1, dtype=torch.int32, device=device)

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        target = target.reshape(-1).long()
        prediction = prediction.reshape(-1).long()
        n = self.num_classes
        valid = (target >= 0) & (target < n)
        if self.ignore_index is not None:
            valid &= target != self.ignore_index
        index = torch.where(valid, target * n + prediction, torch.full_like(target, n * n))
        low = self._parts[0]
        for chunk in index.split(self.CHUNK):
            low.index_add_(0, chunk, torch.ones_like(chunk, dtype=torch.int32))
            self._carry()

    def _carry(self) -> None:
        low, high = self._parts[0], self._parts[1]
        carry = torch.div(low, self.CARRY, rounding_mode="floor")
        high += carry
        low -= carry * self.CARRY

    def add_(self, counts) -> None:
        """Add another matrix (e.g. restored from a checkpoint): shape (n, n), any integer type,
        on the host or the device."""
        counts = torch.as_tensor(counts).reshape(-1).to("cpu", torch.int64)
        parts = torch.stack([counts % self.CARRY, counts // self.CARRY]).to(torch.int32)
        self._parts[:, :-1] += parts.to(self._parts.device)
        self._carry()

    def state(self) -> torch.Tensor:
        """A copy of the device counts, ``(2, n*n + 1)`` int32: what ranks all-reduce (each part
        stays within int32 summed over up to 64 ranks)."""
        return self._parts.clone()

    def counts(self, state: torch.Tensor | None = None) -> np.ndarray:
        """The (n, n) int64 counts on the host, from ``state`` (e.g. all-reduced over ranks) or
        from this matrix: one device-to-host copy."""
        low, high = (self._parts if state is None else state).cpu().to(torch.int64)
        n = self.num_classes
        return (low + high * self.CARRY)[:-1].view(n, n).numpy()

    def total(self, all_reduce=None) -> np.ndarray:
        """The counts summed over every rank by ``all_reduce`` (in place on a device tensor), or
        this rank's counts when there is none: the one synchronising read of an epoch."""
        state = self.state()
        return self.counts(all_reduce(state) if all_reduce else state)

    def read(self) -> np.ndarray:
        """This rank's counts on the host."""
        return self.counts()

    def reset(self) -> None:
        self._parts.zero_()


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
