"""Velocity networks v(x_t, t | c) for rectified flows on small images (shared by the
rectified-flow papers: instaflow, slimflow, ...)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sin/cos features of t in [0, 1] (scaled by 1000 as diffusion UNets do)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    ang = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([ang.sin(), ang.cos()], dim=1)


class VelocityMLP(nn.Module):
    """[x ⊕ sin-t ⊕ proj(caption)] → hidden × depth (SiLU) → x-sized velocity.

    The caption embedding c (e.g. a frozen MiniLM sentence vector) is projected to `cond_dim`;
    the null caption used by classifier-free guidance is the zero vector.
    """

    def __init__(self, x_dim: int, c_dim: int, hidden: int = 256, depth: int = 3, t_dim: int = 32, cond_dim: int = 32):
        super().__init__()
        self.x_dim, self.c_dim, self.t_dim = x_dim, c_dim, t_dim
        self.cond = nn.Linear(c_dim, cond_dim)
        layers: list[nn.Module] = []
        width = x_dim + t_dim + cond_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, x_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        return self.net(torch.cat([x, sinusoidal(t, self.t_dim), self.cond(c)], dim=1))


def build(model_cfg, x_dim: int, c_dim: int) -> VelocityMLP:
    """A VelocityMLP from a `model:` config section (hidden, depth, t_dim, cond_dim)."""
    return VelocityMLP(
        x_dim, c_dim, hidden=int(model_cfg.hidden), depth=int(model_cfg.depth),
        t_dim=int(model_cfg.t_dim), cond_dim=int(model_cfg.cond_dim),
    )


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
