"""Phase `unit`: the boxing table on real gloo processes, and the sanity checks.

* every 1-D boxing src -> dst in {S(0), S(1), B, P}² of a [rows·p, cols·p] tensor: the result
  is the same logical tensor (max error) and the bytes sent equal the cost model's;
* an all-reduce of ones gives p on every rank; one send of a known tensor counts its bytes;
* the SBP engine on one process trains the MLP bit-exactly like plain PyTorch.

    python -m steps.oneflow.unit scale=mini io.metrics=results/oneflow/unit.json
"""

from __future__ import annotations

import itertools
import time

import torch
import torch.distributed as dist
from omegaconf import DictConfig

from steps.core import metrics, seeding, spawn
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.oneflow import common, mlp
from steps.oneflow.comm import COUNTER, RingComm
from steps.oneflow.gtensor import Ctx
from steps.oneflow.sbp import B, P, S, collective

KINDS = (S(0), S(1), B, P)


def _name(s) -> str:
    return str(s).replace("(", "").replace(")", "")


def worker(rank: int, world: int, rows: int, cols: int, seed: int) -> dict:
    ctx = Ctx((world,), rank)
    shape = (rows * world, cols * world)
    addends = [torch.randn(shape, generator=seeding.step_generator(seed, "unit_addend", r)) for r in range(world)]
    full = addends[0].clone()
    for a in addends[1:]:
        full = full + a
    errors = {}
    for src, dst in itertools.product(KINDS, KINDS):
        x = ctx.from_full(full, (src,))
        if src == P:
            x.local = addends[rank].clone()
        y = ctx.box(x, (dst,), op=f"{_name(src)}_to_{_name(dst)}")
        if dst == P:  # the addends must sum to the logical tensor
            parts = [torch.empty_like(y.local) for _ in range(world)]
            dist.all_gather(parts, y.local)  # gloo's own collective: a check, not counted
            total = parts[0].clone()
            for t in parts[1:]:
                total = total + t
            err = float((total - full).abs().max())
        else:
            err = float((y.local - ctx.shard(full, (dst,))).abs().max())
        errors[f"{_name(src)}_to_{_name(dst)}"] = err
    ring = RingComm(tuple(range(world)), rank)
    ones = ring.all_reduce(torch.ones(5))
    before = COUNTER.bytes
    if rank == 0:
        ring.send(torch.ones(7), 1)
    elif rank == 1:
        dist.recv(torch.empty(7), 0)
    counted = COUNTER.bytes - before
    return {"records": ctx.records, "errors": errors, "ones_dev": float((ones - world).abs().max()), "counted": counted}


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "metrics")
    t0 = time.monotonic()
    common.setup(cfg)
    world, u = int(cfg.group.world), cfg.unit
    if world < 2:
        raise ConfigError("the unit phase needs group.world >= 2 processes")
    X, Y = mlp.digits()
    log.info(f"boxing table on {world} gloo processes")
    res = spawn.run_group(worker, world, (int(u.rows), int(u.cols), int(cfg.model.seed)), cfg, float(cfg.group.timeout_s))
    boxing, kinds = {}, {}
    for name in res[0]["errors"]:
        recs = [[r for r in rr["records"] if r.op == name] for rr in res]
        t = common.tally(recs)
        src, dst = name.split("_to_")
        kinds[name] = collective(_parse(src), _parse(dst))
        boxing[name] = {"max_error": max(rr["errors"][name] for rr in res),
                        "measured_bytes": sum(k["bytes_per_iter"] for k in t["by_kind"].values()),
                        "predicted_bytes": sum(k["predicted_per_iter"] for k in t["by_kind"].values()),
                        "max_abs_mismatch": t["max_abs_mismatch"]}
    # the single-process engine against plain PyTorch (after the group: no threads before fork)
    init = mlp.init_params(int(cfg.model.hidden), int(cfg.model.seed))
    tr = cfg.train
    ctx = Ctx((1,), 0)
    a = mlp.train_sbp(ctx, cfg.placements.single, init, X, Y,
                      int(cfg.model.seed), int(tr.batch), float(tr.lr), int(u.steps))
    b = mlp.train_torch(init, X, Y, int(cfg.model.seed), int(tr.batch), float(tr.lr), int(u.steps))
    values = {
        "boxing": boxing,
        "boxing_max_error": max(v["max_error"] for v in boxing.values()),
        "boxing_max_abs_mismatch": max(v["max_abs_mismatch"] for v in boxing.values()),
        "allreduce_ones_max_dev": max(rr["ones_dev"] for rr in res),
        "counter_bytes": res[0]["counted"],
        "counter_expected": 7 * 4,  # seven float32
        "counter_error": abs(res[0]["counted"] - 7 * 4),
        "single_vs_torch_max_abs_diff": mlp.max_abs_diff(a, b),
        "single_process_transfers": len(ctx.records),
    }
    metrics.write(out, cfg, "unit", "The boxing table on gloo processes (logical result, bytes vs cost model) "
                  "and sanity checks", values, time.monotonic() - t0, f"cpu, {world} gloo processes",
                  extra={"collectives": kinds})
    log.info(f"boxing: max error {values['boxing_max_error']:.2e}, max byte mismatch {values['boxing_max_abs_mismatch']}; "
             f"single process vs PyTorch {values['single_vs_torch_max_abs_diff']:.1e}")
    return values


def _parse(text: str):
    from steps.oneflow.sbp import parse

    return parse(text)


if __name__ == "__main__":
    run(main, "oneflow", "unit")
