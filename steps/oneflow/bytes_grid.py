"""Phase `bytes_grid`: for every (batch B, hidden H) cell, which placement (DP or TP) moves fewer
bytes per iteration — the planner's choice from its dry run (cost model, no communication)
against the measured argmin from real runs on gloo processes.

    python -m steps.oneflow.bytes_grid scale=mini io.metrics=results/oneflow/bytes_grid.json
"""

from __future__ import annotations

import itertools
import time

from omegaconf import DictConfig, OmegaConf

from steps.core import metrics, spawn
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.oneflow import common, mlp
from steps.oneflow.gtensor import Ctx


def cell(b: int, h: int) -> str:
    return f"b{b}_h{h}"


def plan_bytes(placement: dict, world: int, X, Y, hidden: int, seed: int, batch: int) -> float:
    """Predicted bytes of one iteration: the planner's dry run on rank 0's view (PlanComm sends
    nothing; every record holds its group's predicted total)."""
    mesh = mlp.mesh_of(placement, world)
    ctx = Ctx(mesh, 0, plan=True)
    mlp.train_sbp(ctx, placement, mlp.init_params(hidden, seed), X, Y, seed, batch, 0.0, 1)
    # rank 0 sees one group per mesh axis; world / mesh[axis] groups do the same transfer
    return float(sum(r.predicted * (world // mesh[r.axis]) for r in ctx.records))


def worker(rank: int, world: int, X, Y, placements: dict, cells: list, seed: int, steps: int, every_s: float) -> dict:
    out = {}
    prog = Progress(len(cells) * len(placements), "grid runs", every_s=every_s) if rank == 0 else None
    for (b, h), (name, pl) in itertools.product(cells, placements.items()):
        ctx = Ctx(mlp.mesh_of(pl, world), rank)
        mlp.train_sbp(ctx, pl, mlp.init_params(h, seed), X, Y, seed, b, 0.01, steps)
        out[(cell(b, h), name)] = ctx.records
        if prog:
            prog.update(1)
    return out


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "metrics")
    t0 = time.monotonic()
    common.setup(cfg)
    world, g, seed = int(cfg.group.world), cfg.grid, int(cfg.model.seed)
    placements = {n: OmegaConf.to_container(cfg.placements[n], resolve=True) for n in g.placements}
    cells = [(int(b), int(h)) for b in g.batch for h in g.hidden]
    X, Y = mlp.digits()
    log.info(f"grid: {len(cells)} cells × {list(placements)} on {world} gloo processes")
    res = spawn.run_group(worker, world, (X, Y, placements, cells, seed, int(g.steps), float(cfg.progress.every_s)),
                          cfg, float(cfg.group.timeout_s))
    values = {"cells": {}, "planner_mismatches": 0, "max_abs_mismatch": 0}
    for b, h in cells:
        c = cell(b, h)
        entry = {}
        for name, pl in placements.items():
            t = common.tally([r[(c, name)] for r in res], int(g.steps))
            entry[name] = {"measured": t["measured_per_iter"], "predicted": t["predicted_per_iter"],
                           "planned": plan_bytes(pl, world, X, Y, h, seed, b)}
            values["max_abs_mismatch"] = max(values["max_abs_mismatch"], t["max_abs_mismatch"])
        names = list(placements)
        planner = min(names, key=lambda n: entry[n]["planned"])
        best = min(names, key=lambda n: entry[n]["measured"])
        entry["planner_choice"] = names.index(planner)      # index into grid.placements
        entry["measured_best"] = names.index(best)
        if "dp" in entry and "tp" in entry:
            entry["tp_over_dp"] = entry["tp"]["measured"] / entry["dp"]["measured"]
        values["planner_mismatches"] += int(planner != best)
        values["cells"][c] = entry
    if "dp" in placements and "tp" in placements:
        # the crossover: the corners of the grid (small H, large B) and (large H, small B)
        hs, bs = sorted({h for _, h in cells}), sorted({b for b, _ in cells})
        values["corners"] = {"small_h_large_b": values["cells"][cell(bs[-1], hs[0])]["tp_over_dp"],
                             "large_h_small_b": values["cells"][cell(bs[0], hs[-1])]["tp_over_dp"]}
    metrics.write(out, cfg, "bytes_grid", "Bytes per iteration of DP and TP over a (batch, hidden) grid: "
                  "measured, predicted per transfer, and planned by the dry run", values, time.monotonic() - t0,
                  f"cpu, {world} gloo processes", extra={"placements": list(placements)})
    log.info(f"grid: planner agrees with the measured argmin in {len(cells) - values['planner_mismatches']}/{len(cells)} cells")
    return values


if __name__ == "__main__":
    run(main, "oneflow", "bytes_grid")
