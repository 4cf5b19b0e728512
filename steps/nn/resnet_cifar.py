"""ResNet18 for 32×32 images (He et al. 2016, the CIFAR variant used by the OTO papers: a 3×3
stem without max-pooling, four stages of two BasicBlocks, widths 64·w … 512·w), written so the
shared ZIG tracer (steps.nn.zig) can partition it: every module is called once (one ReLU
module per use), residual adds couple the channels of each stage.

    model = ResNet18(classes=10)            # 11.2 M parameters
    tiny = ResNet18(classes=10, width=1/16) # CPU tests of the full-scale code path
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu2(h + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        w = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU()
        blocks, cin = [], w[0]
        for i, c in enumerate(w):
            for b in range(2):
                blocks.append(BasicBlock(cin, c, 2 if (i > 0 and b == 0) else 1))
                cin = c
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))
