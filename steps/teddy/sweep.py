"""Phase `sweep` (one job per arm): graph lottery tickets at every level k of the paper's
schedule, p_g(k) = 1 − (1 − edge_rate)^k of the edges and p_w(k) = 1 − (1 − weight_rate)^k of the
weights, each level a fresh network (one-shot arms) or k rounds of mask learning (UGS).

Arms (spec "Mini reproduction"):
* teddy        — lowest degree scores pruned (nested across levels), KD to the dense teacher,
                 ℓ0-projected gradient descent;
* teddy_no_kd  — the same without distillation;
* inverted     — the same with the score inverted (hub edges kept, low-degree edges pruned);
* random       — random edges and a random fixed weight mask, plain training;
* ugs          — Chen et al. 2021, iterative (steps.teddy.ugs).
Wall time per level: what producing that ticket cost — for the TEDDY family the score, the dense
teacher (for seeds whose teacher it is) and the one training; for UGS every round up to k.
Resumes after a kill at the granularity of one (seed, level) — one seed for UGS.

    python -m steps.teddy.sweep scale=mini io.arm=teddy io.graph=data/teddy/graph.npz io.score=data/teddy/edge_score.npz io.dense=models/teddy/dense.pt io.out=results/teddy/sweep_teddy.json
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import checkpoint, metrics, runtime
from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_npz
from steps.core.metrics import summary
from steps.nn import gcn
from steps.teddy import common, mechanism, ugs
from steps.teddy.train import fit, new_model, weight_sparsity

KD_ARMS = {"teddy": True, "teddy_no_kd": False, "inverted": True, "random": False}


def pruned_edges(arm: str, score: np.ndarray, n_prune: int, seed: int) -> np.ndarray:
    """Boolean mask of the edges `arm` removes at a level with `n_prune` edges pruned."""
    if arm in ("teddy", "teddy_no_kd"):
        return mechanism.prune_edges(score, n_prune)
    if arm == "inverted":
        return mechanism.prune_edges(-score, n_prune)
    order = np.random.default_rng([seed, 17]).permutation(len(score))  # nested: a fixed order per seed
    out = np.zeros(len(score), dtype=bool)
    out[order[:n_prune]] = True
    return out


def random_weight_masks(model: gcn.GCN, sparsity: float, seed: int) -> list[torch.Tensor]:
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    flat = torch.ones(total)
    gen = torch.Generator().manual_seed(seed * 7919 + 3)
    flat[torch.randperm(total, generator=gen)[: math.ceil(total * sparsity)]] = 0.0
    out, start = [], 0
    for p in params:
        out.append(flat[start:start + p.numel()].view_as(p).to(p.device))
        start += p.numel()
    return out


def one_shot(arm: str, g, cfg: DictConfig, score: np.ndarray, teacher: torch.Tensor | None, fixed_s: float,
             seed: int, k: int) -> dict:
    n_edges = g.edges.shape[1]
    p_w = common.sparsity(float(cfg.levels.weight_rate), k)
    pruned = pruned_edges(arm, score, mechanism.level_count(n_edges, float(cfg.levels.edge_rate), k), seed)
    adj = gcn.Adjacency(g.edges[:, ~pruned], g.n, device=g.device)
    model = new_model(g, cfg.model, seed)
    if arm == "random":
        res = fit(g, model, adj, cfg.train, seed, weight_masks=random_weight_masks(model, p_w, seed))
    else:
        res = fit(g, model, adj, cfg.train, seed, teacher=teacher if KD_ARMS[arm] else None,
                  kd_lambda=float(cfg.teddy.kd_lambda), weight_sparsity=p_w)
    model.load_state_dict(res["state"])
    return {"k": k, "seed": seed, "val": res["val"], "test": res["test"], "epoch": res["epoch"],
            "edge_sparsity": float(pruned.mean()), "weight_sparsity": weight_sparsity(model),
            "train_s": res["wall_s"], "wall_s": res["wall_s"] + fixed_s, "flops": gcn.flops(model, g.n, adj.nnz)["sparse"],
            "nonzero_params": int(sum(int(torch.count_nonzero(p)) for p in model.parameters()))}


def main(cfg: DictConfig) -> dict:
    arm, graph, score_path, out = need_io(cfg, "arm", "graph", "score", "out")
    if arm not in common.ARMS:
        raise ConfigError(f"teddy sweep io.arm must be one of {', '.join(common.ARMS)}, got {arm!r}")
    # The TEDDY family reads the dense teacher (its logits, and its training time as part of a
    # ticket's cost); random and UGS do not, so their jobs need not wait for it.
    teachers = checkpoint.load(need_io(cfg, "dense")[0], "dense teacher")["state"] if arm in common.TEACHER_ARMS else None
    rt = runtime.start(cfg, int(cfg.seeds[0]))
    g = common.load_graph(graph).to(rt.device)
    sc = load_npz(score_path, "edge scores")
    ks, seeds = common.levels(cfg), [int(s) for s in cfg.seeds]
    items = [(s, None) for s in seeds] if arm == "ugs" else [(s, k) for s in seeds for k in ks]
    results = Snapshots()
    t0 = time.monotonic()
    loop = TrainLoop(cfg, out, total=len(items), desc=f"teddy {arm}", results=results)
    for i in loop:
        seed, k = items[i]
        if arm == "ugs":
            rows = ugs.run(g, cfg, seed, ks)
            for r in rows:
                r.pop("kept_edges")
                results[f"s{seed}_k{r['k']}"] = r
        else:
            fixed = float(sc["score_s"]) + float(teachers["train_s"][str(seed)]) if teachers else 0.0
            teacher = teachers["teachers"][str(seed)].to(rt.device) if teachers else None
            r = one_shot(arm, g, cfg, sc["score"], teacher, fixed, seed, k)
            results[f"s{seed}_k{k}"] = r
        loop.log(test=float(r["test"]))
    rows = sorted(results.values(), key=lambda r: (r["k"], r["seed"]))
    levels = {}
    for k in ks:
        at = [r for r in rows if r["k"] == k]
        levels[f"k{k}"] = {
            "k": k, "test": summary([r["test"] for r in at]), "wall_s": summary([r["wall_s"] for r in at]),
            "edge_sparsity": float(np.mean([r["edge_sparsity"] for r in at])),
            "weight_sparsity": float(np.mean([r["weight_sparsity"] for r in at])),
            "target_edge_sparsity": common.sparsity(float(cfg.levels.edge_rate), k),
            "target_weight_sparsity": common.sparsity(float(cfg.levels.weight_rate), k),
            "flops": float(np.mean([r["flops"] for r in at])) if all("flops" in r for r in at) else None,
        }
    values = {"levels": levels, "runs": {f"s{r['seed']}_k{r['k']}": r for r in rows}}
    metrics.write(out, cfg, f"sweep_{arm}", f"graph lottery tickets of the {arm} arm at every level",
                  values, time.monotonic() - t0, rt.description)
    loop.finish()
    return values


if __name__ == "__main__":
    run(main, "teddy", "sweep")
