"""Degree-corrected contextual stochastic block model: a seeded, Planetoid-like node
classification graph with heavy-tailed degrees (hubs), the synthetic stand-in for Cora/Citeseer.

    g = csbm.generate(n=2000, classes=5, dim=32, mean_degree=8, homophily=0.75, pareto_alpha=2.5,
                      mean_norm=1.2, seed=0)       # dict of numpy arrays, see `generate`

Edges (Karrer & Newman 2011): P(i ~ j) = θ_i θ_j B[c_i, c_j] with degree propensities
θ ~ Pareto(α) scaled to mean 1 and B = p_in on the diagonal, p_out off it, chosen so the expected
mean degree and the expected share of same-class edges (homophily) are the ones asked for.
Features (the "contextual" part, Deshpande et al. 2018): x_i = μ_{c_i} + N(0, I) with class means
of norm `mean_norm` in random directions. Split as Planetoid: `train_per_class` labels per class,
then `val` and `test` nodes at random.
"""

from __future__ import annotations

import numpy as np


def generate(
    n: int,
    classes: int,
    dim: int,
    mean_degree: float,
    homophily: float,
    pareto_alpha: float,
    mean_norm: float,
    seed: int,
    train_per_class: int = 20,
    val: int = 500,
    test: int = 1000,
) -> dict[str, np.ndarray]:
    """{'x' (n, dim) float32, 'y' (n,) int64, 'edges' (2, E) int64 unique pairs i < j,
    'theta' (n,), 'train'/'val'/'test' node indices}."""
    if train_per_class * classes + val + test > n:
        raise ValueError(f"split needs {train_per_class * classes + val + test} nodes, the graph has {n}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes)
    theta = rng.pareto(pareto_alpha, n) + 1.0  # classical Pareto with x_m = 1
    theta /= theta.mean()
    # Expected degree of a node with θ = 1: (n/K)·p_in + n(K-1)/K·p_out; homophily h = share of p_in.
    per_class = n / classes
    p_in = homophily * mean_degree / per_class
    p_out = (1.0 - homophily) * mean_degree / (per_class * (classes - 1))
    block = np.where(y[:, None] == y[None, :], p_in, p_out)
    prob = np.minimum(1.0, theta[:, None] * theta[None, :] * block)
    upper = np.triu(rng.random((n, n)) < prob, k=1)
    edges = np.stack(np.nonzero(upper)).astype(np.int64)
    means = rng.standard_normal((classes, dim))
    means *= mean_norm / np.linalg.norm(means, axis=1, keepdims=True)
    x = (means[y] + rng.standard_normal((n, dim))).astype(np.float32)
    order = rng.permutation(n)
    train = np.concatenate([order[y[order] == c][:train_per_class] for c in range(classes)])
    rest = np.setdiff1d(order, train, assume_unique=True)
    rest = rest[rng.permutation(len(rest))]
    return {"x": x, "y": y.astype(np.int64), "edges": edges, "theta": theta, "train": np.sort(train),
            "val": np.sort(rest[:val]), "test": np.sort(rest[val:val + test])}


def homophily(edges: np.ndarray, y: np.ndarray) -> float:
    """Share of edges whose two ends have the same class."""
    return float(np.mean(y[edges[0]] == y[edges[1]])) if edges.shape[1] else float("nan")
