"""Phase `frontier`: accuracy, size and measured whole-network latency of every model — the
paper's accuracy–latency frontier of sparse wide against dense narrow networks (§5, Fig. 1).

For each model: top-1 test accuracy (torch, eval mode); compression.account (parameters,
dense and sparse FLOPs, storage in the CSR format for sparse models); the achieved sparsity of
every 1×1 layer; and the median batch-1 latency of the packed network (engine.Engine) with its
1×1 layers on each kernel — the model's sparse kernel (CSR for unstructured, BSR for 1×4
blocks) and both dense kernels — timed round-robin on one thread. Before timing, every engine's
logits are compared with torch's on test images.

A model's latency is that of its best kernel: a sparse model on its sparse kernel, a dense
model on the faster of BLAS and the same-loop dense kernel (the honest "best dense").
Claim 3: for each dense narrow model, the sparse models at most frontier.match_tol slower;
a win when the best of them is more accurate.

    python -m steps.fast_sparse_convnets.frontier scale=mini io.models=models/fast_sparse_convnets \
        io.out=results/fast_sparse_convnets/frontier.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import checkpoint, metrics
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.fast_sparse_convnets import common
from steps.fast_sparse_convnets.model import build, export, layer_sparsity


def sparse_kind(block: int) -> str:
    return "csr" if block == 1 else "bsr4"


def evaluate(cfg: DictConfig, arm: dict, path: Path, data) -> dict:
    from threadpoolctl import threadpool_limits

    from steps.fast_sparse_convnets.engine import Engine, interleaved_latency
    from steps.nn import compression

    ck = checkpoint.load(path, f"{arm['file']} checkpoint")
    model = build(cfg.model, arm["width"])
    model.load_state_dict(ck["state"]["model"])
    model.eval()
    acc = common.accuracy(model, data)
    n_check = min(int(cfg.frontier.check_images), len(data))
    x, _ = data.get(torch.arange(n_check))
    example = x[:1]
    acct = compression.account(model, example, fmt="csr" if arm["block"] else "dense")
    net = export(model)
    kinds = ([sparse_kind(arm["block"])] if arm["block"] else []) + ["dense_loop", "blas"]
    engines = {k: Engine(net, k, int(cfg.kernels.strip), tuple(x.shape[1:])) for k in kinds}
    with torch.no_grad():
        ref = model(x[:n_check]).numpy()
    err = {k: float(max(np.abs(e(x[i].numpy()) - ref[i]).max() for i in range(n_check))) for k, e in engines.items()}
    img = np.ascontiguousarray(x[0].numpy())
    with threadpool_limits(1):
        lat = interleaved_latency(engines, img, int(cfg.frontier.repeats), int(cfg.frontier.warmup))
    lat_ms = {k: v["median_s"] * 1e3 for k, v in lat.items()}
    best_dense = min(lat_ms["dense_loop"], lat_ms["blas"])
    achieved = layer_sparsity(model)
    return {
        "width": arm["width"], "sparsity": arm["sparsity"], "block": arm["block"], "accuracy": acc,
        "latency_ms": lat_ms[sparse_kind(arm["block"])] if arm["block"] else best_dense,
        "latency_best_dense_ms": best_dense, "latency_ms_by_kernel": lat_ms,
        "latency_min_ms_by_kernel": {k: v["min_s"] * 1e3 for k, v in lat.items()},
        "engine_max_abs_err": max(err.values()),
        "params_total": acct["params"]["total"], "params_nonzero": acct["params"]["nonzero"],
        "mflops_dense": acct["flops"]["dense"] / 1e6, "mflops_sparse": acct["flops"]["sparse"] / 1e6,
        "storage_kb": acct["storage_bits"] / 8 / 1e3,  # CSR for sparse models, dense otherwise
        "layer_sparsity": achieved,
        "sparsity_dev": max(abs(a - arm["sparsity"]) for a in achieved) if arm["block"] else 0.0,
    }


def matched(models: dict, arms: list[dict], narrow: list[float], tol: float) -> dict:
    """Claim 3: per dense narrow model, the most accurate sparse model whose latency is at most
    (1 + tol) × the dense model's; wins counts those more accurate than the dense model."""
    sparse = [a["key"] for a in arms if a["block"]]
    points, wins = {}, 0
    for w in narrow:
        d = models[f"dense_w{common.key(w)}"]
        cands = [k for k in sparse if models[k]["latency_ms"] <= (1 + tol) * d["latency_ms"]]
        best = max(cands, key=lambda k: models[k]["accuracy"]) if cands else None
        win = best is not None and models[best]["accuracy"] > d["accuracy"]
        wins += int(win)
        points[f"w{common.key(w)}"] = {
            "dense_accuracy": d["accuracy"], "dense_latency_ms": d["latency_ms"], "candidates": len(cands),
            "best_sparse_width": models[best]["width"] if best else None,
            "best_sparse_sparsity": models[best]["sparsity"] if best else None,
            "best_sparse_block": models[best]["block"] if best else None, "best_sparse_accuracy": models[best]["accuracy"] if best else None,
            "best_sparse_latency_ms": models[best]["latency_ms"] if best else None,
            "acc_gain": models[best]["accuracy"] - d["accuracy"] if best else None, "win": int(win)}
    return {"points": points, "wins": wins, "n_points": len(narrow)}


def main(cfg: DictConfig) -> dict:
    models_dir, out = need_io(cfg, "models", "out")
    t0 = time.monotonic()
    _, device = common.set_device(cfg, "cpu")  # latency is a CPU measurement (the paper: ARM CPUs)
    torch.set_num_threads(1)  # batch-1 latency on one thread; accuracy is cheap anyway
    data = common.load_data(cfg, "test")
    arms = common.arms(cfg)
    models = {}
    progress = Progress(len(arms), "frontier", cfg.progress.every_s)
    for arm in arms:
        models[arm["key"]] = evaluate(cfg, arm, Path(models_dir) / f"{arm['file']}.pt", data)
        progress.update(1, acc=models[arm["key"]]["accuracy"], ms=models[arm["key"]]["latency_ms"])
    progress.close()
    sparse = [models[a["key"]] for a in arms if a["block"]]
    narrow = [float(w) for w in cfg.frontier.narrow_widths]
    top = max(float(v) for v in cfg.prune.sparsities)
    same_net = {a["key"]: models[a["key"]]["latency_best_dense_ms"] / models[a["key"]]["latency_ms"]
                for a in arms if a["block"]}
    values = {
        "models": models,
        "summary": {  # the same network, sparse on its sparse kernel vs dense (masked weights run densely)
            "speedup_same_net": same_net,
            "min_speedup_same_net_top": min((v for a in arms if a["block"] and a["sparsity"] == top
                                             for v in [same_net[a["key"]]]), default=None),
            "max_speedup_same_net": max(same_net.values(), default=None),
        },
        "matched": matched(models, arms, narrow, float(cfg.frontier.match_tol)),
        "sanity": {
            "max_engine_err": max(m["engine_max_abs_err"] for m in models.values()),
            "max_sparsity_dev": max((m["sparsity_dev"] for m in sparse), default=0.0),
            "dense_w1_accuracy": models["dense_w1"]["accuracy"] if "dense_w1" in models else None,
        },
    }
    for k, m in models.items():
        log.info(f"{k}: acc {m['accuracy']:.4f} latency {m['latency_ms']:.3f} ms {m['latency_ms_by_kernel']}")
    log.info(f"matched-latency wins: {values['matched']['wins']}/{len(narrow)}")
    metrics.write(out, cfg, "frontier",
                  "per model: test accuracy, measured batch-1 latency (ms, median, 1 thread) per 1×1 kernel, "
                  "compression accounting; claim 3's matched-latency comparison",
                  values, time.monotonic() - t0, f"{device}; latency on 1 thread")
    return values


def cli() -> None:
    run(main, common.PAPER, "frontier")


if __name__ == "__main__":
    cli()
