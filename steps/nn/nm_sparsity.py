"""N:M fine-grained structured sparsity (2:4 is what NVIDIA's Sparse Tensor Cores accelerate) and
unstructured magnitude masks, for any linear layer.

    mask = nm_mask(layer.weight, 2, 4)          # keep the 2 largest |w| of every 4 along the input dim
    assert is_nm_sparse(layer.weight * mask, 2, 4)

A linear layer computes y = x Wᵀ with W of shape (out, in): the GEMM's reduction dimension is
`in`, so the groups of M run along each row of W (consecutive input features). Groups along
the output dimension (columns of W) are not hardware-valid (Mishra et al. 2021, arXiv 2104.08378).
"""

from __future__ import annotations

import torch


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """A {0,1} mask of `weight` (out, in) keeping the n largest magnitudes in every group of m
    consecutive input elements; ties go to the lower index (torch.topk on a stable order)."""
    if weight.dim() != 2:
        raise ValueError(f"N:M masks are for 2-d (out, in) weights, got shape {tuple(weight.shape)}")
    out_f, in_f = weight.shape
    if in_f % m:
        raise ValueError(f"input dimension {in_f} is not a multiple of M={m}")
    if not 0 < n <= m:
        raise ValueError(f"need 0 < N <= M, got N={n}, M={m}")
    groups = weight.detach().abs().reshape(out_f, in_f // m, m)
    # Rank of each element inside its group (stable sort: among equal magnitudes the earlier wins).
    order = torch.argsort(torch.argsort(-groups, dim=-1, stable=True), dim=-1)
    return (order < n).to(weight.dtype).reshape(out_f, in_f)


def is_nm_sparse(weight: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every group of m consecutive input elements of `weight` has at most n non-zeros."""
    out_f, in_f = weight.shape
    if in_f % m:
        return False
    nonzero = (weight.detach().reshape(out_f, in_f // m, m) != 0).sum(-1)
    return bool((nonzero <= n).all())


def magnitude_mask(weight: torch.Tensor, density: float) -> torch.Tensor:
    """Unstructured mask keeping round(density · numel) largest magnitudes of one layer
    (layer-wise, the same sparsity per layer as N:M, so the two compare at equal density)."""
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    flat = weight.detach().abs().flatten()
    keep = max(1, round(density * flat.numel()))
    idx = torch.argsort(flat, descending=True, stable=True)[:keep]
    mask = torch.zeros_like(flat)
    mask[idx] = 1.0
    return mask.reshape(weight.shape).to(weight.dtype)
