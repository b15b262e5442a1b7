"""ResUNet++ (Jha et al., "ResUNet++: An Advanced Architecture for Medical Image Segmentation", 2019).

    python3 -c "from unetbench.models.resunetpp import ResUNetPlusPlus as M; print(sum(p.numel() for p in M(3, 1).parameters()))"
    4062993

The architecture of the authors' reference (DebeshJha/ResUNetPlusPlus, m_resunet.py in Keras and
its PyTorch port resunet++_pytorch.py): a stem and three residual units (full pre-activation,
1x1 projection shortcut, squeeze-and-excitation with reduction 8) with 16/32/64/128 filters,
an ASPP bridge (rates 1, 6, 12, 18) of 256, three decoder blocks (attention on the skip and the
coarser map, nearest 2x upsampling, concatenation, a residual unit) and an ASPP before the 1x1
output. ``width`` 64 (the suite's --model-width default) is the published size; smaller widths
scale every filter count by width/64 (smoke tests only). Sides must be multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

REFERENCE_WIDTH = 64          # --model-width that gives the published filters 16..256
FIRST_FILTERS = 16


def _bn_relu_conv(cin: int, cout: int, stride: int = 1) -> list:
    return [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 3, stride=stride, padding=1)]


class SqueezeExcite(nn.Module):
    """Channel attention: global average pool, bottleneck MLP, sigmoid gate (no biases)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.net = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return x * self.net(self.pool(x).view(b, c)).view(b, c, 1, 1)


class ResidualUnit(nn.Module):
    """Two convolutions (pre-activated, except the stem's first) plus a 1x1 projection shortcut, then SE."""

    def __init__(self, cin: int, cout: int, stride: int, stem: bool = False):
        super().__init__()
        if stem:   # the input image is not normalised and activated first
            body = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1)]
        else:
            body = _bn_relu_conv(cin, cout, stride) + _bn_relu_conv(cout, cout)
        self.body = nn.Sequential(*body)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), nn.BatchNorm2d(cout))
        self.se = SqueezeExcite(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.body(x) + self.shortcut(x))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling as in the reference: four dilated 3x3 branches summed, 1x1."""

    def __init__(self, cin: int, cout: int, rates=(1, 6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, padding=r, dilation=r), nn.BatchNorm2d(cout)) for r in rates)
        self.project = nn.Conv2d(cout, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(sum(branch(x) for branch in self.branches))


class Attention(nn.Module):
    """Gates the coarse decoder map ``x`` by the finer encoder map ``g`` (pooled to x's size)."""

    def __init__(self, g_channels: int, x_channels: int):
        super().__init__()
        self.g = nn.Sequential(*_bn_relu_conv(g_channels, x_channels), nn.MaxPool2d(2))
        self.x = nn.Sequential(*_bn_relu_conv(x_channels, x_channels))
        self.gate = nn.Sequential(*_bn_relu_conv(x_channels, x_channels))

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.g(g) + self.x(x)) * x


class Decoder(nn.Module):
    def __init__(self, skip_channels: int, in_channels: int, out_channels: int):
        super().__init__()
        self.attention = Attention(skip_channels, in_channels)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.unit = ResidualUnit(in_channels + skip_channels, out_channels, stride=1)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.unit(torch.cat([self.up(self.attention(skip, x)), skip], dim=1))


class ResUNetPlusPlus(nn.Module):
    """Input (N, in_channels, H, W), H and W multiples of 8; output logits (N, classes, H, W)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1, width: int = REFERENCE_WIDTH):
        super().__init__()
        base = FIRST_FILTERS * width // REFERENCE_WIDTH
        if base < 1 or FIRST_FILTERS * width % REFERENCE_WIDTH:
            from ..core.errors import UserError
            raise UserError(f"--model-width {width}: ResUNet++ scales its 16..256 filters by width/64, so the "
                            "width must be a multiple of 4 (64 is the published size)")
        f = [base * 2**i for i in range(5)]            # 16, 32, 64, 128, 256
        self.stem = ResidualUnit(in_channels, f[0], stride=1, stem=True)
        self.encoder = nn.ModuleList(ResidualUnit(f[i], f[i + 1], stride=2) for i in range(3))
        self.bridge = ASPP(f[3], f[4])
        self.decoder = nn.ModuleList([Decoder(f[2], f[4], f[3]), Decoder(f[1], f[3], f[2]),
                                      Decoder(f[0], f[2], f[1])])
        self.aspp_out = ASPP(f[1], f[0])
        self.head = nn.Conv2d(f[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for unit in self.encoder:
            skips.append(unit(skips[-1]))
        x = self.bridge(skips.pop())
        for block in self.decoder:
            x = block(skips.pop(), x)
        return self.head(self.aspp_out(x))
