"""The seed's UNet: DoubleConv + BatchNorm, 64..1024 channels, transposed-conv upsampling.

    python3 -c "from unetbench.models.unet import UNet, count_parameters; print(count_parameters(UNet(3, 20)))"
    31044756

One training step costs about 868 GFLOP per 384x512 sample (forward + backward), as counted by
unetbench/models/flops.py (torch's FlopCounterMode, any registered model), the figure the results
and the benchmark report; tests/models/test_models.py checks that count against a hand formula.
"""

from __future__ import annotations

import torch
from torch import nn


class DoubleConv(nn.Sequential):
    """(3x3 conv -> BatchNorm -> ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Upsample by a transposed conv, concatenate the skip connection, DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """Input (N, in_channels, H, W) with H and W divisible by 16; output logits (N, classes, H, W)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 20, width: int = 64):
        super().__init__()
        w = [width * 2**i for i in range(5)]  # 64, 128, 256, 512, 1024
        self.inc = DoubleConv(in_channels, w[0])
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[i], w[i + 1])) for i in range(4))
        self.ups = nn.ModuleList(Up(w[i + 1], w[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
