"""Segmentation metrics from a confusion matrix accumulated on the device.

    cm = ConfusionMatrix(num_classes=13, device=device, ignore_index=IGNORE_INDEX)   # unetbench.data.prepared
    cm.update(logits.argmax(1), labels)      # no host sync: stays on the device
    cm.add_counts(counts, labels.numel())    # counts from the compiled training unit (ConfusionCounter)
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
from torch import nn


LABEL_VALUES = 256  # labels are uint8 (unetbench/data/prepared.py): every target lies in [0, 256)


def confusion_rows(num_classes: int, ignore_index: int | None) -> int:
    """Rows of the counting matrix: one per label value a target can hold (0..255), so that
    ignored and out-of-range labels land in rows that are never read, with no mask. An ignore
    value inside the class range (none of the prepared datasets has one) gets a row of its own."""
    inside = ignore_index is not None and 0 <= ignore_index < num_classes
    return max(LABEL_VALUES, num_classes + 1 if inside else num_classes)


def confusion_counts(prediction: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """One batch's counts, ``(rows * num_classes,)`` int32 with rows = confusion_rows(...):
    cell (t, p) at ``t * num_classes + p``; only rows below num_classes are ever read.

    Written to fuse: inside the compiled training unit (models/unit.py) this is one kernel with
    the argmax (no int64 index of every pixel in memory, no mask, no where), and the index is
    int32, the type the Gaudi bridge's index_add_ lists. Targets must lie in [0, rows), as
    uint8 labels do; ignored pixels (255) fall into row 255, never read."""
    n = num_classes
    row = target.reshape(-1).to(torch.int32)
    if ignore_index is not None and 0 <= ignore_index < n:  # an ignore value that is also a class
        row = torch.where(row == ignore_index, n, row)
    index = row * n + prediction.reshape(-1).to(torch.int32)
    counts = torch.zeros(confusion_rows(n, ignore_index) * n, dtype=torch.int32, device=index.device)
    return counts.index_add_(0, index, torch.ones_like(index))


class ConfusionCounter(nn.Module):
    """confusion_counts as a module without state: what the compiled training unit calls."""

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return confusion_counts(prediction, target, self.num_classes, self.ignore_index)


class ConfusionMatrix:
    """rows = ground truth, columns = prediction; counted on the device without a host sync.

    The counts live on the device as two int32 parts, ``low + high * CARRY``, and are combined
    into int64 on the host only. int32 because lazy-mode Gaudi runs int64 as int32 on the device
    (PT_ENABLE_INT64_SUPPORT applies to eager mode only): a single int64-looking counter would
    wrap after 2**31 pixels, about 10.9k images of 384x512 in one epoch on one rank. The host
    knows how many pixels each update adds (the batch's shape: no sync), so it carries ``low``
    into ``high`` (elementwise ops, no branch on the device) only when ``low`` could otherwise
    pass the int32 limit: every ~680 steps of 16x384x512, not every step.

    Per training step the loop adds the counts its compiled unit computed (``add_counts``:
    one op outside the compiled graph); ``update`` counts a batch itself (evaluation, tests)."""

    CARRY = 2**24     # low < CARRY after every carry; high counts units of CARRY
    LIMIT = 2**31 - 1 # low never passes this

    def __init__(self, num_classes: int, device: torch.device | str, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.rows = confusion_rows(num_classes, ignore_index)
        # Every cell of (label value, prediction), read only for labels below num_classes: no
        # boolean masking (which needs a host sync to learn the result size). index_add_ asks
        # the host nothing and is native on every backend; torch.bincount reads the maximum on
        # the host first, and histc was a CPU fallback on Gaudi (bridge 1.17-1.19) and computes
        # bins in float32, which misplaces integers from 66 classes on. One implementation for
        # every backend, so all of them count the same way. Row 0 = low part, row 1 = high part.
        self._parts = torch.zeros(2, self.rows * num_classes, dtype=torch.int32, device=device)
        self._low = self._parts[0]   # a view made once: a step adds to it with one op, no select
        self._uncarried = 0   # pixels added to low since it was last below CARRY (host count)

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Count one batch (any integer types, targets in [0, 256))."""
        pixels = target.numel()
        # One index_add_ must not by itself pass the int32 limit of low.
        chunk = self.LIMIT - self.CARRY
        for start in range(0, pixels, chunk):
            stop = min(pixels, start + chunk)
            counts = confusion_counts(prediction.reshape(-1)[start:stop], target.reshape(-1)[start:stop],
                                      self.num_classes, self.ignore_index)
            self.add_counts(counts, stop - start)

    @torch.no_grad()
    def add_counts(self, counts: torch.Tensor, pixels: int) -> None:
        """Add one batch's ``confusion_counts`` (``pixels``: how many it counted, at most
        LIMIT - CARRY): one add, plus a carry when the low part could otherwise overflow."""
        if self._uncarried + pixels > self.LIMIT - self.CARRY:
            self._carry()
        self._low.add_(counts)
        self._uncarried += pixels

    def _carry(self) -> None:
        low, high = self._parts[0], self._parts[1]
        carry = torch.div(low, self.CARRY, rounding_mode="floor")
        high += carry
        low -= carry * self.CARRY
        self._uncarried = 0

    def add_(self, counts) -> None:
        """Add another matrix (e.g. restored from a checkpoint): shape (n, n), any integer type,
        on the host or the device."""
        n = self.num_classes
        counts = torch.as_tensor(counts).reshape(n, n).to("cpu", torch.int64)
        parts = torch.stack([counts % self.CARRY, counts // self.CARRY]).to(torch.int32)
        self._carry()   # low below CARRY first: adding up to CARRY - 1 then stays within int32
        self._parts.view(2, self.rows, n)[:, :n] += parts.to(self._parts.device)
        self._carry()

    def state(self) -> torch.Tensor:
        """A copy of the device counts, ``(2, rows*n)`` int32: what ranks all-reduce (each part
        stays within int32 summed over up to 64 ranks: low is carried below CARRY first)."""
        self._carry()
        return self._parts.clone()

    def counts(self, state: torch.Tensor | None = None) -> np.ndarray:
        """The (n, n) int64 counts on the host, from ``state`` (e.g. all-reduced over ranks) or
        from this matrix: one device-to-host copy."""
        low, high = (self._parts if state is None else state).cpu().to(torch.int64)
        n = self.num_classes
        return (low + high * self.CARRY).view(self.rows, n)[:n].numpy()

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
        self._uncarried = 0


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
