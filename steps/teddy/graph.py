"""Phase `graph`: the node-classification graph every arm trains on.

smoke/mini: a seeded degree-corrected contextual SBM (steps.data.csbm; the spec's synthetic
stand-in for Cora/Citeseer: heavy-tailed degrees, homophily 0.75); full: a Planetoid graph
(Cora/Citeseer/Pubmed, steps.data.planetoid) read from the fetched files in io.raw.

    python -m steps.teddy.graph scale=mini io.out=data/teddy/graph.npz io.metrics=results/teddy/graph.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import log
from steps.data import csbm
from steps.teddy import mechanism


def build(cfg: DictConfig) -> dict[str, np.ndarray]:
    src = str(cfg.graph.source)
    if src == "csbm":
        c = cfg.graph.csbm
        return csbm.generate(int(c.n), int(c.classes), int(c.dim), float(c.mean_degree), float(c.homophily),
                             float(c.pareto_alpha), float(c.mean_norm), int(c.seed), int(c.train_per_class),
                             int(c.val), int(c.test))
    if src == "planetoid":
        from steps.data import planetoid

        (raw,) = need_io(cfg, "raw")
        return planetoid.read(Path(raw), str(cfg.graph.planetoid.name))
    raise ConfigError(f"teddy graph.source must be csbm or planetoid, got {src!r}")


def main(cfg: DictConfig) -> dict:
    out, out_metrics = need_io(cfg, "out", "metrics")
    t0 = time.monotonic()
    g = build(cfg)
    digest = save_npz(out, **{k: v for k, v in g.items() if k != "theta"})
    deg = mechanism.degrees(g["edges"], len(g["y"]))
    values = {
        "nodes": int(len(g["y"])), "edges": int(g["edges"].shape[1]),
        "features": int(g["x"].shape[1]), "classes": int(g["y"].max() + 1),
        "mean_degree": float(deg.mean()), "max_degree": int(deg.max()), "isolated": int((deg == 0).sum()),
        "degree_p99": float(np.percentile(deg, 99)), "homophily": csbm.homophily(g["edges"], g["y"]),
        "split": {k: int(len(g[k])) for k in ("train", "val", "test")},
    }
    log.info(f"graph: {values['nodes']} nodes, {values['edges']} edges, mean degree {values['mean_degree']:.2f}, "
             f"max {values['max_degree']}, homophily {values['homophily']:.3f}")
    metrics.write(out_metrics, cfg, "graph", "the graph: size, degrees (heavy tail), homophily, split", values,
                  time.monotonic() - t0, "cpu", extra={"source": str(cfg.graph.source), "sha256": digest})
    return values


if __name__ == "__main__":
    run(main, "teddy", "graph")
