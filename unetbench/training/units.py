"""The compiled units over a model, built one way for the training run and the on-device self-check.

    unit = train_unit(model, backend, dist, splits.num_classes, splits.ignore_index)   # Trainer.build_units
    loss, loss_value, counts = unit(x, y)
    unit = eval_unit(model, backend, splits.ignore_index)
    loss, prediction = unit(x, y)

Training's unit: the model, its loss and the batch's confusion counts in one module (models/unit.py),
wrapped as the device wants it before DDP (HPU graphs on lazy Gaudi), in DDP with several ranks,
then compiled (the fast profile). Evaluation's: compiled apart, over the plain model.
"""

from __future__ import annotations

from torch import nn

from ..models.unit import EvalForward, TrainForward
from .distributed import no_buffer_broadcast_per_forward
from .metrics import ConfusionCounter


def criterion(ignore_index: int | None) -> nn.Module:
    return nn.CrossEntropyLoss(ignore_index=ignore_index if ignore_index is not None else -100)


def train_unit(model: nn.Module, backend, dist, num_classes: int, ignore_index: int | None) -> nn.Module:
    # Forward, loss, argmax and the confusion counts compile as one graph, so the loss fuses
    # with the last layer and the metrics are one kernel, not a dozen ops outside the graph.
    counter = ConfusionCounter(num_classes, ignore_index)
    forward = backend.before_ddp(TrainForward(model, criterion(ignore_index), counter))  # Gaudi: HPU graphs
    if dist.world_size > 1:
        # Gradients are averaged across ranks in backward. No buffer broadcast per forward: by
        # default DDP sends rank 0's buffers (BatchNorm running statistics) to every rank before
        # each forward, a collective per step that nothing reads: training normalises with batch
        # statistics, and evaluation takes rank 0's running statistics once, before it starts.
        forward = nn.parallel.DistributedDataParallel(forward, **no_buffer_broadcast_per_forward(),
                                                      **backend.ddp_kwargs())
    return backend.compile_model(forward)


def eval_unit(model: nn.Module, backend, ignore_index: int | None) -> nn.Module:
    # Compiled apart from training (another mode, no gradients, other batch shapes), over the
    # plain model: evaluation needs no DDP hooks.
    return backend.compile_model(EvalForward(model, criterion(ignore_index)))
