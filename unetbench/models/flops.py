"""FLOPs of one training sample (forward + backward), counted by torch for any registered model.

    python3 -c "from unetbench.models.flops import flops_per_sample; print(flops_per_sample('unet', 384, 512, 20) / 1e9)"
    867.77

The model is built on the meta device (no memory, no arithmetic) and a batch of two runs forward,
then backward from the summed logits, under ``torch.utils.flop_counter.FlopCounterMode``:
convolutions, transposed convolutions, matrix products and their gradients, a multiply-add
counted as 2. Normalisation, activations, pooling and the loss are not counted (bandwidth-bound,
negligible in FLOPs), as in the UNet hand formula (unetbench/models/unet.py), which the tests keep as
the oracle: the count is 0.08% below it, the first convolution having no input gradient.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..core.registry import MODELS, resolve


@lru_cache(maxsize=32)
def flops_per_sample(model: str, height: int, width: int, num_classes: int, base: int = 64,
                     in_channels: int = 3) -> float:
    """Training FLOPs per sample of registered model ``model`` at a ``height`` x ``width`` input."""
    build = resolve(MODELS[model].builder)
    with torch.device("meta"):
        net = build(in_channels, num_classes, base)
        # two samples: BatchNorm in training mode refuses one value per channel (DeepLab's pooled branch)
        x = torch.empty(2, in_channels, height, width)
    net.train()
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return float(counter.get_total_flops()) / 2
