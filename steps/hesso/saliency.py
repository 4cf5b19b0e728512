"""HESSO's hybrid saliency (§3.2; official code `importance_score/*`, `compute_importance_scores`).

Five criteria per group g, from its parameters x_g and the gradient direction d_g:

    magnitude            ‖x_g‖₂
    avg_magnitude        ‖x_g‖₂ / dim(x_g)
    cosine_similarity    ⟨x_g, d_g⟩ / (‖x_g‖‖d_g‖) + 1
    taylor_first_order   |⟨x_g, d_g⟩|
    taylor_second_order  ½ ⟨x_g, d_g⟩²

Each criterion is divided by its L2 norm over *all* groups of *all* families before mixing with
the weights (default 0.2 each): unnormalised Taylor scores would otherwise dominate (the spec's
pitfall). Low saliency = redundant.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from steps.hesso.groups import Family, group_vectors

CRITERIA = ("magnitude", "avg_magnitude", "cosine_similarity", "taylor_first_order", "taylor_second_order")
SAFE = 1e-8


@torch.no_grad()
def raw_scores(families: list[Family], weight_decay: float = 0.0) -> dict[str, torch.Tensor]:
    """Every criterion for every group (global index), before normalisation. The direction d is
    the gradient plus the weight-decay term (the optimizer's own step direction, as `grad_variant`
    is in the official code); a missing gradient counts as zero."""
    per: dict[str, list[torch.Tensor]] = {c: [] for c in CRITERIA}
    for f in families:
        x = group_vectors(f)
        g = group_vectors(f, grads=True)
        g = torch.zeros_like(x) if g is None else g + weight_decay * x
        norm_x = x.norm(dim=1)
        inner = (x * g).sum(1)
        per["magnitude"].append(norm_x)
        per["avg_magnitude"].append(norm_x / x.shape[1])
        per["cosine_similarity"].append(inner / (norm_x + SAFE) / (g.norm(dim=1) + SAFE) + 1.0)
        per["taylor_first_order"].append(inner.abs())
        per["taylor_second_order"].append(0.5 * inner**2)
    return {c: torch.cat(v).cpu() for c, v in per.items()}


def normalize(scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each criterion divided by its L2 norm over all groups."""
    return {c: s / (s.norm() + SAFE) for c, s in scores.items()}


def hybrid(families: list[Family], weights: Mapping[str, float], weight_decay: float = 0.0) -> torch.Tensor:
    """Σ_c w_c · s_c / ‖s_c‖ over the criteria with a non-zero weight (global group index)."""
    unknown = set(weights) - set(CRITERIA)
    if unknown:
        raise ValueError(f"unknown saliency criteria {sorted(unknown)}; known: {', '.join(CRITERIA)}")
    raw = raw_scores(families, weight_decay)
    norm = normalize({c: raw[c] for c, w in weights.items() if w})
    total = torch.zeros(sum(f.n for f in families), dtype=torch.float64)
    for c, s in norm.items():
        total += float(weights[c]) * s.double()
    return total
