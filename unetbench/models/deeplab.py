"""DeepLabV3-ResNet101 from torchvision, its classifier sized for the dataset's classes.

    python3 -c "from unetbench.models.deeplab import DeepLabV3ResNet101 as M; print(sum(p.numel() for p in M(3, 21).parameters()))"
    58630997

Built with ``weights=None, weights_backbone=None``: nothing is downloaded (compute nodes have no
internet, and ``weights=None`` alone would still fetch the ImageNet backbone); the weights are
random unless --weights names a local file (unetbench/models/weights.py). No auxiliary head:
the benchmark trains the main output only (torchvision's aux_loss=True adds 2,365,205
parameters at 21 classes). The backbone has output stride 8 (dilated layer3/layer4) and the
logits are upsampled bilinearly to the input size. Its widths are torchvision's: --model-width
must stay 64.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import UserError


def torchvision_deeplab(num_classes: int, aux_loss: bool = False) -> nn.Module:
    try:
        from torchvision.models.segmentation import deeplabv3_resnet101
    except (ImportError, RuntimeError) as err:   # not installed, or built for another torch
        raise UserError(f"the deeplabv3_resnet101 model needs torchvision, which cannot be imported ({err}); "
                        "install torch and torchvision together (make venv, or pip install torch torchvision "
                        "from the same release)") from None
    return deeplabv3_resnet101(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_loss)


class DeepLabV3ResNet101(nn.Module):
    """torchvision's model returning the logits tensor (N, classes, H, W) instead of its dict."""

    def __init__(self, in_channels: int = 3, num_classes: int = 21, width: int = 64):
        super().__init__()
        if in_channels != 3 or width != 64:
            raise UserError(f"the deeplabv3_resnet101 model has torchvision's fixed layout (3 input channels, "
                            f"ResNet-101 widths): leave --model-width at 64 (got {width})")
        self.net = torchvision_deeplab(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]
