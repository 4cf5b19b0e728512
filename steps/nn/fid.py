"""Fréchet distance between Gaussian fits of feature sets (Heusel et al. 2017), and the small
digits classifier whose features replace Inception's at smoke and mini scale.

The classifier is trained by the pipeline on real digits only and frozen before any generator
exists; its FID is named "FID (digits-classifier features)", never Inception FID.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), with scipy's matrix square root."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as pytorch-fid does
        eps = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    return frechet_distance(*gaussian(feat_a), *gaussian(feat_b))


class DigitsClassifier(nn.Module):
    """MLP 64 → 128 → 64 → 10; `features` is the 64-d pre-activation of the second layer."""

    def __init__(self, x_dim: int = 64, hidden: int = 128, feat_dim: int = 64, n_classes: int = 10):
        super().__init__()
        self.l1 = nn.Linear(x_dim, hidden)
        self.l2 = nn.Linear(hidden, feat_dim)
        self.head = nn.Linear(feat_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.features(x)))
