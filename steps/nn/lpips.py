"""LPIPS, the learned perceptual image patch similarity (Zhang, Isola, Efros, Shechtman & Wang,
"The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018,
arXiv 1801.03924), AlexNet variant, version 0.1 — the distance InstaFlow's second distillation
stage minimises (InstaFlow §3.3, model card: "we switch the similarity loss to LPIPS").

Written in plain torch because the `lpips` package and torchmetrics' LPIPS import torchvision,
whose PyPI wheel does not import beside our CPU torch build. The parameter names match the
originals, so their weight files load unchanged:

* the trunk `features.{0,3,6,8,10}` is torchvision's `alexnet().features`
  (alexnet-owt-7be5be79.pth; the `classifier.*` keys of that file are ignored);
* the heads `lin{0..4}.model.1.weight` are the lpips package's v0.1 linear layers
  (lpips/weights/v0.1/alex.pth; `model.0` is the dropout that package keeps in front).

Per layer l (relu1..relu5): unit-normalise the features over channels, square the difference,
weight the channels with the head w_l (a 1×1 conv), average over space; sum over layers
(paper Eq. 1). Inputs are images in [-1, 1], scaled as in v0.1 (ScalingLayer).
With no weight files (tests) every weight is random: shapes and algebra, not a metric.
"""

from __future__ import annotations

import os

import torch
from torch import nn

CHANNELS = (64, 192, 384, 256, 256)  # AlexNet relu1..relu5
# features[:TAPS[i]] ends at relu(i+1): lpips' slices [0:2], [2:5], [5:8], [8:10], [10:12]
TAPS = (2, 5, 8, 10, 12)
SHIFT = (-0.030, -0.088, -0.188)  # v0.1 ScalingLayer: (x - shift) / scale, x in [-1, 1]
SCALE = (0.458, 0.448, 0.450)


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet `features` (same indices, so the same state-dict keys), without
    in-place ReLUs so every tapped activation survives the next layer."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )


class NetLin(nn.Module):
    """One LPIPS head: dropout then a bias-free 1×1 conv to one channel (keys `model.1.weight`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Normalise each spatial feature vector to unit length (lpips.normalize_tensor)."""
    return x / (torch.sqrt((x * x).sum(dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """d(x, y) per image, shape (N,), for images in [-1, 1] of shape (N, 3, H, W).

    Frozen: every parameter has requires_grad False, and the module stays in eval mode (the
    heads' dropout is off); gradients still flow to the inputs, as a loss needs.
    """

    def __init__(self):
        super().__init__()
        self.features = alexnet_features()
        for i, c in enumerate(CHANNELS):
            self.add_module(f"lin{i}", NetLin(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The relu1..relu5 activations of the trunk."""
        out, start = [], 0
        h = (x - self.shift) / self.scale
        for end in TAPS:
            h = self.features[start:end](h)
            out.append(h)
            start = end
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # One trunk pass over both batches.
        fx, fy = zip(*(f.chunk(2) for f in self.taps(torch.cat([x, y]))), strict=True)
        d = 0.0
        for i, (a, b) in enumerate(zip(fx, fy, strict=True)):
            diff = (_unit(a) - _unit(b)) ** 2
            d = d + getattr(self, f"lin{i}").model(diff).mean(dim=(2, 3))
        return d.squeeze(1)

    def load_trunk(self, state: dict) -> None:
        """Load torchvision AlexNet weights (a full `alexnet` state dict or its `features`)."""
        feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(feats or state)

    def load_heads(self, state: dict) -> None:
        """Load the lpips package's linear heads (keys lin{i}.model.1.weight)."""
        heads = {k: v for k, v in state.items() if k.startswith("lin")}
        missing = [f"lin{i}.model.1.weight" for i in range(len(CHANNELS)) if f"lin{i}.model.1.weight" not in heads]
        if missing:
            raise ValueError(f"LPIPS head weights lack {', '.join(missing)}")
        for i in range(len(CHANNELS)):
            getattr(self, f"lin{i}").load_state_dict({"model.1.weight": heads[f"lin{i}.model.1.weight"]})


def build(trunk_path: str | os.PathLike | None = None, heads_path: str | os.PathLike | None = None) -> LPIPS:
    """LPIPS with weights from files (full scale), or random weights where a path is None."""
    net = LPIPS()
    if trunk_path is not None:
        net.load_trunk(torch.load(trunk_path, map_location="cpu", weights_only=True))
    if heads_path is not None:
        net.load_heads(torch.load(heads_path, map_location="cpu", weights_only=True))
    return net
