"""Phase `equiv`: train the MLP for `train.steps` SGD steps under one placement on gloo
processes and compare the parameters with single-process PyTorch (same weights, same batches);
tally every transfer the planner inserted, measured bytes against the cost model.

    python -m steps.oneflow.equiv scale=mini equiv.placement=tp io.metrics=results/oneflow/equiv_tp.json

Placements dp, tp, hybrid are SBP annotations in params (`placements.<name>`); pp is the
4-stage pipeline on the actor runtime (steps.oneflow.actors), micro-batches and quota in `equiv.pp`.
"""

from __future__ import annotations

import time

from omegaconf import DictConfig, OmegaConf

from steps.core import metrics, spawn
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import Progress, log
from steps.oneflow import actors, common, mlp
from steps.oneflow.gtensor import Ctx


def sbp_worker(rank: int, world: int, X, Y, placement: dict, hidden: int, seed: int, batch: int, lr: float,
               steps: int, every_s: float) -> dict:
    init = mlp.init_params(hidden, seed)
    ctx = Ctx(mlp.mesh_of(placement, world), rank)
    prog = Progress(steps, f"{world} ranks", every_s=every_s) if rank == 0 else None
    params = mlp.train_sbp(ctx, placement, init, X, Y, seed, batch, lr, steps,
                           on_step=(lambda s: prog.update(1)) if prog else None)
    if prog:
        prog.close()
    return {"params": params if rank == 0 else None, "records": ctx.records}


def pp_worker(rank: int, world: int, X, Y, hidden: int, seed: int, batch: int, lr: float, steps: int,
              m: int, q: int, every_s: float) -> dict:
    stage = actors.Stage(rank, world, mlp.init_params(hidden, seed), hidden, batch)
    prog = Progress(steps, f"{world} stages", every_s=every_s) if rank == 0 else None
    peak = 0
    for step in range(steps):
        idx = mlp.batch_indices(seed, step, batch, len(Y))
        st = stage.step(list(X[idx].chunk(m)), list(Y[idx].chunk(m)), q, lr)
        peak = max(peak, st.peak_inflight)
        if prog:
            prog.update(1)
    if prog:
        prog.close()
    return {"params": {k: v.detach() for k, v in stage.params.items()}, "records": stage.records, "peak": peak}


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "metrics")
    name = cfg.equiv.get("placement")
    valid = [p for p in cfg.placements if p != "single"] + ["pp"]
    if name not in valid:
        raise ConfigError(f"equiv.placement must be one of {', '.join(valid)}, got {name!r}")
    t0 = time.monotonic()
    common.setup(cfg)
    world, tr, seed, hidden = int(cfg.group.world), cfg.train, int(cfg.model.seed), int(cfg.model.hidden)
    batch, lr, steps = int(tr.batch), float(tr.lr), int(tr.steps)
    every = float(cfg.progress.every_s)
    X, Y = mlp.digits()  # before the fork: the workers share it
    extra = {}
    if name == "pp":
        m, q = int(cfg.equiv.pp.micro_batches), int(cfg.equiv.pp.quota)
        log.info(f"pp: {world} stages, {m} micro-batches, quota {q}, {steps} steps")
        res = spawn.run_group(pp_worker, world, (X, Y, hidden, seed, batch, lr, steps, m, q, every), cfg,
                              float(cfg.group.timeout_s))
        params = {}
        for r in res:
            params.update(r["params"])
        extra["peak_inflight_per_stage"] = [r["peak"] for r in res]
        micro = m
        desc = f"{world}-stage pipeline, {m} micro-batches, quota {q}"
    else:
        placement = OmegaConf.to_container(cfg.placements[name], resolve=True)
        mesh = mlp.mesh_of(placement, world)
        log.info(f"{name}: mesh {mesh}, {steps} steps")
        res = spawn.run_group(sbp_worker, world, (X, Y, placement, hidden, seed, batch, lr, steps, every), cfg,
                              float(cfg.group.timeout_s))
        params, micro = res[0]["params"], 1
        extra["placement"] = placement
        per_iter = len(res[0]["records"]) // max(1, steps)
        extra["transfers_rank0_iteration0"] = common.plan_lines(res[0]["records"][:per_iter])
        desc = f"placement {name} on mesh {list(mesh)}"
    ref = mlp.train_torch(mlp.init_params(hidden, seed), X, Y, seed, batch, lr, steps, micro_batches=micro)
    t = common.tally([r["records"] for r in res], steps)
    values = {"max_abs_diff": mlp.max_abs_diff(params, ref), "bytes": t,
              "param_scale": max(float(v.abs().max()) for v in ref.values())}
    metrics.write(out, cfg, f"equiv_{name}", f"{desc}: parameters after {steps} SGD steps vs single-process "
                  "PyTorch; bytes per iteration measured vs cost model", values, time.monotonic() - t0,
                  f"cpu, {world} gloo processes", extra=extra)
    log.info(f"{name}: max |param - single| = {values['max_abs_diff']:.2e}; {t['measured_per_iter']:.0f} B/iteration "
             f"measured, {t['predicted_per_iter']:.0f} predicted, {t['mismatched_transfers']} transfers differ")
    return values


if __name__ == "__main__":
    run(main, "oneflow", "equiv")
