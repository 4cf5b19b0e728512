"""Phase `score`: TEDDY's degree-based edge score of every edge (§4.1) and what it prunes: the
mean endpoint degree of the edges each level removes against those it keeps (hub edges go first).

    python -m steps.teddy.score scale=mini io.graph=data/teddy/graph.npz io.out=data/teddy/edge_score.npz io.metrics=results/teddy/score.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig
from scipy.stats import spearmanr

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.io import load_npz, save_npz
from steps.teddy import common, mechanism


def main(cfg: DictConfig) -> dict:
    graph, out, out_metrics = need_io(cfg, "graph", "out", "metrics")
    a = load_npz(graph, "graph")
    edges, n = a["edges"], len(a["y"])
    t0 = time.perf_counter()
    score = mechanism.edge_score(edges, n)
    score_s = time.perf_counter() - t0
    save_npz(out, score=score, score_s=np.array(score_s))
    deg = mechanism.degrees(edges, n)
    hub = np.maximum(deg[edges[0]], deg[edges[1]])
    same = a["y"][edges[0]] == a["y"][edges[1]]
    per_level, pruned = {}, None
    for k in common.levels(cfg):
        pruned = mechanism.prune_edges(score, mechanism.level_count(edges.shape[1], float(cfg.levels.edge_rate), k), pruned)
        per_level[f"k{k}"] = {
            "edge_sparsity": float(pruned.mean()),
            "pruned_max_degree": float(hub[pruned].mean()) if pruned.any() else None,
            "kept_max_degree": float(hub[~pruned].mean()),
            "kept_homophily": float(same[~pruned].mean()),
            "isolated_after": int((mechanism.degrees(edges[:, ~pruned], n) == 0).sum()),
        }
    values = {"edges": int(edges.shape[1]), "score_s": score_s,
              "spearman_score_vs_hub_degree": float(spearmanr(score, hub).statistic),
              "levels": per_level}
    metrics.write(out_metrics, cfg, "score", "TEDDY's degree-based edge scores and the edges each level prunes",
                  values, score_s, "cpu")
    return values


if __name__ == "__main__":
    run(main, "teddy", "score")
