"""Phase `dense`: the dense GCN on the whole graph, once per seed — TEDDY's distillation teacher
(its best-validation logits, §4.2) — and the feature-only baseline (the same network with every
edge removed, i.e. an MLP) that says whether the graph carries information at all.

    python -m steps.teddy.dense scale=mini io.graph=data/teddy/graph.npz io.out=models/teddy/dense.pt io.metrics=results/teddy/dense.json
"""

from __future__ import annotations

import time

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import checkpoint, metrics, runtime
from steps.core.cli import need_io, run
from steps.core.metrics import summary
from steps.core.progress import log
from steps.nn import compression, gcn
from steps.teddy import common
from steps.teddy.train import fit, new_model


def main(cfg: DictConfig) -> dict:
    graph, out, out_metrics = need_io(cfg, "graph", "out", "metrics")
    rt = runtime.start(cfg, int(cfg.seeds[0]))
    g = common.load_graph(graph).to(rt.device)
    t0 = time.monotonic()
    full = gcn.Adjacency(g.edges, g.n, device=g.device)
    empty = gcn.Adjacency(np.zeros((2, 0), dtype=np.int64), g.n, device=g.device)
    teachers, rows = {}, []
    for seed in (int(s) for s in cfg.seeds):
        model = new_model(g, cfg.model, seed)
        res = fit(g, model, full, cfg.train, seed)
        mlp = fit(g, new_model(g, cfg.model, seed), empty, cfg.train, seed)
        teachers[str(seed)] = res["logits"].cpu()
        rows.append({"seed": seed, "gcn_test": res["test"], "gcn_val": res["val"], "epoch": res["epoch"],
                     "mlp_test": mlp["test"], "train_s": res["wall_s"]})
        log.info(f"seed {seed}: dense GCN test {res['test']:.3f} (val {res['val']:.3f}, epoch {res['epoch']}), "
                 f"feature-only {mlp['test']:.3f}, {res['wall_s']:.2f} s")
    model.load_state_dict(res["state"])
    model.eval()
    with torch.no_grad():
        lat = compression.latency(lambda: model(g.x, full), threads=torch.get_num_threads(), min_run_time=0.05 if cfg.scale == "smoke" else 0.2)
    checkpoint.save(out, cfg, int(cfg.train.epochs), teachers=teachers, train_s={str(r["seed"]): r["train_s"] for r in rows})
    gcn_acc, mlp_acc = [r["gcn_test"] for r in rows], [r["mlp_test"] for r in rows]
    values = {
        "gcn": summary(gcn_acc), "mlp": summary(mlp_acc),
        "gcn_minus_mlp": float(np.mean(gcn_acc) - np.mean(mlp_acc)),
        "train_s": summary([r["train_s"] for r in rows]), "per_seed": {f"s{r['seed']}": r for r in rows},
        "params": compression.count_params(model), "flops": gcn.flops(model, g.n, full.nnz),
        "storage_bits": compression.storage_bits(model, 32), "latency": lat,
    }
    metrics.write(out_metrics, cfg, "dense", "the dense GCN teacher and the feature-only baseline (test accuracy)",
                  values, time.monotonic() - t0, rt.description)
    return values


if __name__ == "__main__":
    run(main, "teddy", "dense")
