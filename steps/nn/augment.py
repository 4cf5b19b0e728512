"""Batch augmentations on tensors (any device), every draw from a seeded torch.Generator so a
run is reproducible: the standard CIFAR random crop + horizontal flip, and mixup.

    xb = augment.crop_flip(xb, g, pad=4)                       # hesso, otov2 (full scale)
    xb, yb_a, yb_b, lam = augment.mixup(xb, yb, 0.2, g)        # otov2 VGG16-BN (tutorial 04)
    loss = lam * F.cross_entropy(out, yb_a) + (1 - lam) * F.cross_entropy(out, yb_b)
"""

from __future__ import annotations

import numpy as np
import torch


def crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4, fill=None) -> torch.Tensor:
    """A random crop of each image padded by `pad`, and a horizontal flip with probability ½.
    `fill`: the padding value per channel (None: 0). On standardised images, −mean/std pads with
    black, as torchvision's RandomCrop does on the raw image before Normalize."""
    n, c, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=g).tolist()
    flips = (torch.rand(n, generator=g) < 0.5).tolist()
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    if fill is not None:
        border = torch.ones(1, 1, h, w, device=x.device, dtype=x.dtype)
        border = 1 - torch.nn.functional.pad(border, (pad, pad, pad, pad))
        padded = padded + border * torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    out = torch.stack([padded[k, :, a:a + h, b:b + w] for k, (a, b) in enumerate(shifts)])
    flip = torch.tensor(flips, device=x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, g: torch.Generator):
    """Mixup (Zhang et al. 2018) as OTOv2's VGG16-BN tutorial applies it: one λ ~ Beta(α, α) per
    batch, the batch mixed with a random permutation of itself. Returns (x̃, y, y[perm], λ); the
    loss λ·CE(f(x̃), y) + (1 − λ)·CE(f(x̃), y[perm]) equals CE against the mixed one-hot targets."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=g).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
