"""Phase `evaluate`: test accuracy of every compact network and its compression accounting
(steps.nn.compression: parameters, FLOPs, storage, measured latency), arranged for the claims.

    python -m steps.otov2.evaluate scale=mini io.partition=... io.models=models/otov2 io.out=results/otov2/accuracy.json
    python -m steps.otov2.evaluate scale=full io.raw=data/otov2/cifar10 io.partition=... io.models=models/otov2 \
        io.out=results/otov2/accuracy.json

Values: {arm: {s<pct>: row}} for the single net of smoke/mini; at full {net: {arm: {s<pct>: row}}}
(e.g. accuracy.resnet50.dhspg.s80.acc); `runs` lists every row by run name either way. A matched
arm's row sits under the DHSPG target it was matched to (accuracy.lasso_matched.s50 = lasso pruned
to the groups dhspg_s50 removed): its target_sparsity is that achieved share.
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from steps.core import checkpoint, metrics
from steps.core.cli import need_io, run
from steps.core.io import load_torch
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    import torch

    from steps.nn import compression
    from steps.otov2.common import accuracy, all_runs, data, load_partition

    part_path, models, out = need_io(cfg, "partition", "models", "out")
    t0 = time.monotonic()
    torch.set_num_threads(1)
    xt, yt = data(cfg, "test")
    example = xt[:1]
    ev = cfg.evaluate
    per_run, by_net, num_groups = {}, {}, {}
    for net_name, arm, s, name in all_runs(cfg):
        if net_name not in num_groups:
            num_groups[net_name] = load_partition(part_path, net_name).num_groups
        meta = checkpoint.load(Path(models) / f"{name}.pt", f"trained model {name}")["state"]["meta"]
        compact = load_torch(Path(models) / f"{name}_compact.pt", "compact model")  # seal and scale checked
        acc = accuracy(compact, xt, yt)
        account = compression.account(compact, example, latency_threads=1 if ev.latency else None)
        row = {
            "target_sparsity": meta.get("target_sparsity", s), "acc": 100 * acc, "acc_full": 100 * meta["acc_full"],
            "group_sparsity": meta["group_sparsity"], "groups_removed": round(meta["group_sparsity"] * num_groups[net_name]),
            "params": account["params"]["total"], "mflops": account["flops"]["dense"] / 1e6,
            "storage_mb": account["storage_mb"],
            "latency_ms": 1e3 * account["latency"]["median_s"] if "latency" in account else None,
            "train_wall_s": meta["wall_time_s"],
        }
        per_run[name] = row
        by_net.setdefault(net_name, {}).setdefault(arm, {})[f"s{int(round(s * 100))}"] = row
        log.info(f"{name}: acc {row['acc']:.2f} %, {row['params']} params, {row['mflops']:.3f} MFLOPs, "
                 f"group sparsity {row['group_sparsity']:.3f}")
    for by_arm in by_net.values():
        dense = by_arm.get("dense", {}).get("s0")
        if dense:
            for rows in by_arm.values():
                for row in rows.values():
                    row["flops_ratio"] = row["mflops"] / dense["mflops"]
                    row["params_ratio"] = row["params"] / dense["params"]
    if list(by_net) == [None]:
        values = {**by_net[None], "runs": per_run, "num_groups": num_groups[None]}
    else:
        values = {**by_net, "runs": per_run, "num_groups": num_groups}
    metrics.write(out, cfg, "accuracy", "test accuracy (%) of the compact networks, their parameters, FLOPs, "
                  "storage and latency (1 thread), per arm and target group sparsity", values, time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "otov2", "evaluate")
