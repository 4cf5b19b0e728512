"""A tiny fully convolutional UNet velocity field v(x_t, t | c) that runs at any H × W (both
divisible by 2): two resolution levels, time and class embeddings, optional spatial
conditioning channels (e.g. an upsampled low-resolution image for super-resolution).

Used by asd (Any-Size-Diffusion, arXiv 2308.16582) as the miniature of Stable Diffusion's UNet:
"any size" generation needs a model with no fixed input size (an MLP over flattened pixels
cannot be sampled on a 16×32 canvas). Conventions of steps.nn.rectified_flow: t ∈ [0, 1],
the class vector c is one-hot and the null (unconditional) class is the zero vector.
"""

from __future__ import annotations

import torch
from torch import nn

from steps.nn.velocity import sinusoidal


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv3×3, plus the embedding as a per-channel bias, twice; residual."""

    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.e = nn.Linear(emb, cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.c1(self.act(self.n1(x))) + self.e(emb)[:, :, None, None]
        h = self.c2(self.act(self.n2(h)))
        return self.skip(x) + h


class FullyConvUNet(nn.Module):
    """in (x ⊕ spatial condition) → ResBlock(c1) → ↓2 → ResBlock(c2) × 2 → ↑2 ⊕ skip → ResBlock(c1) → out.

    `global_context`: the bottleneck adds a projection of its own spatial mean to every position,
    the cheapest global interaction a conv net can have (a stand-in for the self-attention of
    Stable Diffusion's UNet, which lets a model see the whole canvas whatever its size).
    """

    def __init__(self, channels: int = 1, n_classes: int = 10, cond_channels: int = 0, c1: int = 32, c2: int = 64,
                 emb: int = 64, global_context: bool = True):
        super().__init__()
        self.channels, self.n_classes, self.cond_channels = channels, n_classes, cond_channels
        self.t_dim = emb
        self.t_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.c_emb = nn.Linear(n_classes, emb, bias=False) if n_classes else None
        self.inp = nn.Conv2d(channels + cond_channels, c1, 3, padding=1)
        self.r1 = ResBlock(c1, c1, emb)
        self.down = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.r2 = ResBlock(c2, c2, emb)
        self.r3 = ResBlock(c2, c2, emb)
        self.ctx = nn.Linear(c2, c2) if global_context else None
        self.up = nn.Conv2d(c2, c1, 3, padding=1)
        self.r4 = ResBlock(2 * c1, c1, emb)
        self.out = nn.Sequential(_norm(c1), nn.SiLU(), nn.Conv2d(c1, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                spatial: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, channels, H, W), t (B,), c (B, n_classes) one-hot or zeros, spatial (B, cond_channels, H, W)."""
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"FullyConvUNet needs even H and W, got {tuple(x.shape[-2:])}")
        emb = self.t_mlp(sinusoidal(t, self.t_dim))
        if self.c_emb is not None and c is not None:
            emb = emb + self.c_emb(c)
        h = torch.cat([x, spatial], 1) if self.cond_channels else x
        h1 = self.r1(self.inp(h), emb)
        h2 = self.r3(self.r2(self.down(h1), emb), emb)
        if self.ctx is not None:
            h2 = h2 + self.ctx(h2.mean((2, 3)))[:, :, None, None]
        u = self.up(nn.functional.interpolate(h2, size=h1.shape[-2:], mode="nearest"))
        return self.out(self.r4(torch.cat([u, h1], 1), emb))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
