"""TEDDY's mechanism, framework-free where it can be (read against the official code,
github.com/hyunjin72/TEDDY: pruning.py `compute_edge_score`, `prune_adj`; main_teddy.py).

* edge_score: d_i the degree of node i in the adjacency as loaded (no added self-loops; the GCN
  adds them later), g_i = (1/d_i)·Σ_{j∈N(i)} d_j^{-1/2} and s_ij = (g_i/d_i)·(g_j/d_j)  (§4.1);
  edges between low-degree nodes score high, edges at hubs low;
* prune_edges: remove the lowest-scoring edges, nested across sparsity levels (edges pruned at a
  lower level stay pruned), counted on unique undirected edges (both directions go together);
* l0_project: zero the globally smallest-magnitude share p_w of all parameters after every
  optimizer step — projected gradient descent on the ℓ0 ball (§4.3);
* kd_loss: KL(p_teacher ‖ p_student) over all nodes, the teacher being the dense GCN's
  best-validation logits (§4.2; `F.kl_div(..., reduction="sum") / N` as the code).
* level_counts: the paper's schedule, p(k) = 1 − (1 − rate)^k after k rounds, as counts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: the graph and score steps do not need it
    import torch


def degrees(edges: np.ndarray, n: int) -> np.ndarray:
    """Degree of every node of the undirected graph with unique edges (2, E)."""
    return np.bincount(edges.ravel(), minlength=n).astype(np.float64)


def edge_score(edges: np.ndarray, n: int) -> np.ndarray:
    """TEDDY's degree-based score of each unique undirected edge (symmetric in i, j)."""
    d = degrees(edges, n)
    with np.errstate(divide="ignore"):
        d_inv = np.where(d > 0, 1.0 / d, 0.0)
        d_inv_sqrt = np.where(d > 0, 1.0 / np.sqrt(d), 0.0)
    i, j = edges
    # Σ_{j∈N(i)} d_j^{-1/2} for every i: A · d^{-1/2}
    neigh = np.bincount(i, weights=d_inv_sqrt[j], minlength=n) + np.bincount(j, weights=d_inv_sqrt[i], minlength=n)
    g = neigh * d_inv
    return g[i] * d_inv[i] * g[j] * d_inv[j]


def level_count(total: int, rate: float, k: int) -> int:
    """How many of `total` items are pruned after k rounds that each prune `rate` of the rest."""
    return int(round(total * (1.0 - (1.0 - rate) ** k)))


def prune_edges(score: np.ndarray, n_prune: int, already: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of pruned edges: the `n_prune` lowest scores, always including `already`
    (pruned at a lower level). Ties go to the lower edge index (a stable sort)."""
    s = np.asarray(score, dtype=np.float64).copy()
    if already is not None:
        if already.sum() > n_prune:
            raise ValueError(f"{int(already.sum())} edges are already pruned; cannot prune only {n_prune}")
        s[already] = -np.inf
    pruned = np.zeros(len(s), dtype=bool)
    pruned[np.argsort(s, kind="stable")[:n_prune]] = True
    return pruned


def l0_project(params: list[torch.Tensor], sparsity: float) -> int:
    """Zero the ceil(sparsity · total) smallest |θ| over all `params` together (in place, no
    autograd); returns how many were zeroed."""
    import torch

    if sparsity <= 0:
        return 0
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    k = math.ceil(flat.numel() * sparsity)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[torch.topk(flat.abs(), k, largest=False, sorted=False).indices] = False
    start = 0
    for p in params:
        m = keep[start:start + p.numel()].view_as(p)
        p.data.mul_(m)
        start += p.numel()
    return k


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_teacher ‖ p_student) summed over classes and averaged over all nodes."""
    import torch.nn.functional as F

    return F.kl_div(F.log_softmax(student_logits, -1), F.softmax(teacher_logits, -1), reduction="sum") / len(student_logits)
