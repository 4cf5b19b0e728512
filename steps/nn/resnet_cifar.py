"""CIFAR networks of the OTO papers for 32×32 images, written so the shared ZIG tracer
(steps.nn.zig) can partition them: every module is called once (one ReLU module per use),
residual adds couple the channels of each stage. All are width-scalable (channels × width) so
CPU tests can run tiny ones.

* ResNet18 (He et al. 2016, CIFAR variant: 3×3 stem without max-pooling, four stages of two
  BasicBlocks, widths 64·w … 512·w).
* ResNet50 (bottleneck blocks [3, 4, 6, 3], expansion 4, the same CIFAR stem; the 3×3 conv of a
  block carries its stride; a 1×1 conv + BN shortcut where shapes change): the architecture of
  OTOv2's tutorial 03 (backends/resnet_cifar10.py of tianyic/only_train_once_personal_footprint),
  23 520 842 parameters and 1.298 GMACs on CIFAR-10, as that tutorial prints.
* VGG16BN (13 conv3×3 with bias + BN + ReLU, max-pool after conv 2, 4, 7, 10, 13, global
  average pool, classifier 512→512→512→10 with ReLU and dropout 0.5): the `vgg16_bn` of OTOv2's
  tutorial 04 (backends/vgg.py), 15 253 578 parameters and 313.7 MMACs, as that tutorial prints.

    model = ResNet18(classes=10)            # 11.2 M parameters
    tiny = ResNet18(classes=10, width=1/16) # CPU tests of the full-scale code path
    ResNet50(classes=10), VGG16BN(classes=10)
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

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


class CifarResNet(nn.Module):
    """3×3 stem (no max-pool), four stages of `block`s at widths 64·w … 512·w (the first block of
    stages 2–4 strided), global average pool, linear head."""

    def __init__(self, block, depths: tuple[int, ...], classes: int, in_channels: int, width: float):
        super().__init__()
        w = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU()
        blocks, cin = [], w[0]
        for i, (c, n) in enumerate(zip(w, depths, strict=True)):
            for b in range(n):
                blocks.append(block(cin, c, 2 if (i > 0 and b == 0) else 1))
                cin = c * block.expansion
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class ResNet18(CifarResNet):
    def __init__(self, classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__(BasicBlock, (2, 2, 2, 2), classes, in_channels, width)


class Bottleneck(nn.Module):
    """1×1 (c) → 3×3 (c, stride) → 1×1 (4c), BN after each, ReLU between; the residual add
    couples the block's output channels with its shortcut's (a ZIG spans the whole stage)."""

    expansion = 4

    def __init__(self, cin: int, c: int, stride: int):
        super().__init__()
        cout = c * self.expansion
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(c, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu3 = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.relu2(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return self.relu3(h + self.shortcut(x))


class ResNet50(CifarResNet):
    def __init__(self, classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__(Bottleneck, (3, 4, 6, 3), classes, in_channels, width)


VGG16_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
VGG16_POOL_AFTER = (1, 3, 6, 9, 12)  # conv indices followed by a 2×2 max-pool (tutorial 04's pooling_pos)


class VGG16BN(nn.Module):
    def __init__(self, classes: int = 10, in_channels: int = 3, width: float = 1.0, hidden: int = 512):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, c in enumerate(VGG16_CHANNELS):
            c = max(1, int(round(c * width)))
            conv = nn.Conv2d(cin, c, 3, 1, 1)  # with bias, as the tutorial's backend
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (9 * c)))  # its He init (fan-out)
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.BatchNorm2d(c), nn.ReLU()]
            if i in VGG16_POOL_AFTER:
                layers.append(nn.MaxPool2d(2, 2))
            cin = c
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        h = max(1, int(round(hidden * width)))
        self.classifier = nn.Sequential(nn.Linear(cin, h), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(h, h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
