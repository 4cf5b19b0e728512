"""DemoResNet: the small CNN of the otov2/hesso specs, built so that a ZIG partition has to
couple layers across a residual add and keep the two halves of a channel concat apart.

    stem conv3×3 (c0) → BN → ReLU
    block 1: conv3×3 (c0) BN ReLU conv3×3 (c0) BN  + identity        → ReLU   (add couples stem, block-1 conv 2)
    block 2: conv3×3/2 (c1) BN ReLU conv3×3 (c1) BN + conv1×1/2 BN    → ReLU   (add couples conv 2 and the shortcut)
    concat:  [conv3×3 (c2) BN ReLU,  conv1×1 (c2) BN ReLU] on dim 1   → GAP → FC (classes)

Widths (c0, c1, c2) default to (16, 32, 32): ≈ 40 k parameters, ≈ 5 MFLOPs on a 14×14 image.
"""

from __future__ import annotations

import torch
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU()] if relu else layers


class DemoResNet(nn.Module):
    def __init__(self, widths=(16, 32, 32), in_channels: int = 1, classes: int = 10):
        super().__init__()
        c0, c1, c2 = (int(w) for w in widths)
        self.stem = nn.Sequential(*_cbr(in_channels, c0))
        self.block1 = nn.Sequential(*_cbr(c0, c0), *_cbr(c0, c0, relu=False))
        self.block2 = nn.Sequential(*_cbr(c0, c1, stride=2), *_cbr(c1, c1, relu=False))
        self.shortcut2 = nn.Sequential(*_cbr(c0, c1, k=1, stride=2, relu=False))
        self.branch_a = nn.Sequential(*_cbr(c1, c2))
        self.branch_b = nn.Sequential(*_cbr(c1, c2, k=1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * c2, classes)
        self.relu = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.relu(x + self.block1(x))
        x = self.relu2(self.block2(x) + self.shortcut2(x))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
        return self.fc(torch.flatten(self.pool(x), 1))
