"""Metrics from the on-device confusion matrix agree with scikit-learn (the oracle)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
)

from unetbench.training.metrics import ConfusionMatrix, summarize


def _random_case(seed, n_classes=6, absent=(2,), shape=(3, 17, 23)):
    rng = np.random.default_rng(seed)
    present = [c for c in range(n_classes) if c not in absent]
    target = rng.choice(present, size=shape)
    prediction = rng.choice(present, size=shape)
    # a class that is predicted but never in the truth, and vice versa
    prediction[0, 0, :3] = present[-1]
    target[0, 1, :4] = present[0]
    return target, prediction


@pytest.mark.parametrize("seed", range(5))
def test_confusion_and_scores_match_sklearn(seed):
    n = 6
    target, prediction = _random_case(seed, n)
    cm = ConfusionMatrix(n, "cpu")
    # accumulate in two batches, as the training loop does
    cm.update(torch.from_numpy(prediction[:2]), torch.from_numpy(target[:2]))
    cm.update(torch.from_numpy(prediction[2:]), torch.from_numpy(target[2:]))
    counts = cm.read()
    t, p = target.ravel(), prediction.ravel()
    np.testing.assert_array_equal(counts, confusion_matrix(t, p, labels=list(range(n))))

    summary = summarize(counts)
    labels = sorted(set(t) | set(p))  # classes present in truth or prediction
    assert summary["accuracy"] == pytest.approx((t == p).mean())
    assert summary["miou"] == pytest.approx(jaccard_score(t, p, labels=labels, average="macro"))
    assert summary["precision"] == pytest.approx(precision_score(t, p, labels=labels, average="macro", zero_division=0))
    assert summary["recall"] == pytest.approx(recall_score(t, p, labels=labels, average="macro", zero_division=0))
    assert summary["f1"] == pytest.approx(f1_score(t, p, labels=labels, average="macro", zero_division=0))
    per_class_iou = jaccard_score(t, p, labels=labels, average=None)
    for label, iou in zip(labels, per_class_iou):
        assert summary["per_class"][label]["iou"] == pytest.approx(iou)


def test_absent_class_is_null_and_left_out_of_means():
    target = np.array([0, 0, 1, 1])
    prediction = np.array([0, 1, 1, 1])
    cm = ConfusionMatrix(3, "cpu")
    cm.update(torch.from_numpy(prediction), torch.from_numpy(target))
    summary = summarize(cm.read(), ["road", "car", "sky"])
    sky = summary["per_class"][2]
    assert sky["name"] == "sky" and sky["iou"] is None and sky["f1"] is None and sky["support"] == 0
    assert summary["miou"] == pytest.approx(jaccard_score(target, prediction, average="macro"))


def test_class_predicted_but_absent_from_truth_scores_zero():
    target = np.array([0, 0, 0, 0])
    prediction = np.array([0, 0, 0, 1])
    cm = ConfusionMatrix(2, "cpu")
    cm.update(torch.from_numpy(prediction), torch.from_numpy(target))
    summary = summarize(cm.read())
    assert summary["per_class"][1]["iou"] == 0.0
    assert summary["per_class"][1]["recall"] is None  # 0/0: never in the truth
    assert summary["miou"] == pytest.approx((0.75 + 0.0) / 2)


def test_ignore_index_pixels_are_not_counted():
    target = torch.tensor([0, 255, 1, 255])
    prediction = torch.tensor([0, 1, 1, 0])
    cm = ConfusionMatrix(2, "cpu", ignore_index=255)
    cm.update(prediction, target)
    np.testing.assert_array_equal(cm.read(), [[1, 0], [0, 1]])


def test_add_and_reset():
    cm = ConfusionMatrix(2, "cpu")
    cm.add_(torch.tensor([[2, 1], [0, 3]]))
    np.testing.assert_array_equal(cm.read(), [[2, 1], [0, 3]])
    cm.reset()
    assert cm.read().sum() == 0


@pytest.mark.parametrize("n", [66, 150, 255])
def test_confusion_is_exact_for_many_classes(n):
    """Every (truth, prediction) cell once, then a random 16x384x512 batch on top: histc must
    put each index in its own bin (with bin edges on the integers it did not, from n = 66)."""
    rng = np.random.default_rng(n)
    every_cell = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij")).reshape(2, -1)
    shape = (16, 384, 512) if n != 255 else (4, 384, 512)  # 255 classes: every cell already covered
    target = np.concatenate([every_cell[0], rng.integers(0, n, size=shape).ravel()])
    prediction = np.concatenate([every_cell[1], rng.integers(0, n, size=shape).ravel()])
    cm = ConfusionMatrix(n, "cpu", ignore_index=255 if n < 255 else None)
    cm.update(torch.from_numpy(prediction), torch.from_numpy(target))
    np.testing.assert_array_equal(cm.read(), confusion_matrix(target, prediction, labels=list(range(n))))


def test_counts_stay_exact_past_the_int32_limit():
    """Lazy-mode Gaudi computes int64 as int32 on the device: the counts are kept as two int32
    parts, so a cell past 2**31 (about 10.9k images of 384x512 in one bin) is still exact."""
    cm = ConfusionMatrix(2, "cpu")
    big = 3 * 2**31 + 12345                      # as restored from a checkpoint of a long epoch
    cm.add_(torch.tensor([[big, 7], [0, 2**31 - 1]]))
    target = torch.zeros(4, 384, 512, dtype=torch.long)
    for _ in range(3):                           # then more updates into the same cells
        cm.update(target, target)
    cm.update(torch.ones(5, dtype=torch.long), torch.ones(5, dtype=torch.long))
    expected = np.array([[big + 3 * target.numel(), 7], [0, 2**31 - 1 + 5]], dtype=np.int64)
    np.testing.assert_array_equal(cm.read(), expected)
    state = cm.state()
    assert state.dtype == torch.int32 and int(state[0].max()) < ConfusionMatrix.CARRY


def test_total_sums_the_parts_over_ranks_before_combining():
    """An all-reduce of the two parts (what ranks exchange) gives the sum of every rank's counts."""
    ranks = [ConfusionMatrix(3, "cpu") for _ in range(2)]
    rng = np.random.default_rng(0)
    truths, predictions = rng.integers(0, 3, size=(2, 2, 1000))
    for cm, t, p in zip(ranks, truths, predictions):
        cm.add_(torch.full((3, 3), ConfusionMatrix.CARRY - 1))   # low parts near the carry
        cm.update(torch.from_numpy(p), torch.from_numpy(t))
    other = ranks[1].state()
    total = ranks[0].total(lambda state: state.add_(other))      # a two-rank all_reduce_sum
    expected = sum(confusion_matrix(t, p, labels=[0, 1, 2]) for t, p in zip(truths, predictions))
    np.testing.assert_array_equal(total, expected + 2 * (ConfusionMatrix.CARRY - 1))


def test_training_unit_counts_on_skewed_labels_with_ignored_pixels_match_sklearn():
    """The counts the compiled training unit computes (ConfusionCounter), added step by step:
    labels skewed as a street scene's (road, sky), a quarter ignored (255)."""
    from unetbench.training.metrics import ConfusionCounter
    n = 5
    rng = np.random.default_rng(3)
    counter = ConfusionCounter(n, 255)
    cm = ConfusionMatrix(n, "cpu", ignore_index=255)
    truths, predictions = [], []
    for _ in range(4):
        target = rng.choice([0, 1, 2, 3, 4, 255], p=[0.45, 0.2, 0.05, 0.03, 0.02, 0.25], size=(2, 16, 24))
        prediction = np.where(rng.random(target.shape) < 0.8, np.minimum(target, n - 1), rng.integers(0, n, target.shape))
        cm.add_counts(counter(torch.from_numpy(prediction), torch.from_numpy(target)), target.size)
        truths.append(target.ravel())
        predictions.append(prediction.ravel())
    t, p = np.concatenate(truths), np.concatenate(predictions)
    kept = t != 255
    np.testing.assert_array_equal(cm.read(), confusion_matrix(t[kept], p[kept], labels=list(range(n))))


def test_the_counting_index_is_int32_the_type_gaudis_index_add_lists():
    from torch.utils._python_dispatch import TorchDispatchMode

    class IndexTypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.types = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.startswith("index_add"):
                self.types.append(args[2].dtype)
            return func(*args, **(kwargs or {}))

    cm = ConfusionMatrix(3, "cpu", ignore_index=255)
    target = torch.tensor([[0, 1, 255, 2]])   # int64, as the loader's labels.long()
    with IndexTypes() as seen:
        cm.update(torch.tensor([[0, 2, 1, 2]]), target)
    assert seen.types == [torch.int32]
    np.testing.assert_array_equal(cm.read(), [[1, 0, 0], [0, 0, 1], [0, 0, 1]])


def test_the_low_part_is_carried_before_it_could_pass_int32():
    """Steps add their counts with one op; the host counts the pixels added and carries the low
    part into the high part only before an add could pass 2**31."""
    cm = ConfusionMatrix(2, "cpu")
    step = torch.zeros(cm.rows * 2, dtype=torch.int32)
    step[0] = 2**30                               # a step of 2**30 pixels, all in cell (0, 0)
    for _ in range(5):
        cm.add_counts(step, 2**30)
    assert cm.read()[0, 0] == 5 * 2**30
    assert int(cm.state()[0].max()) < ConfusionMatrix.CARRY
