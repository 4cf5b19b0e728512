"""Phase `pipeline`: the actor runtime over micro-batches m and register quotas q. Per stage:
the idle fraction of each iteration (from the actors' event timestamps) and the peak number of
micro-batches in flight (activations held for the backward: the memory proxy), plus the bytes
between stages against the cost model. Timings on oversubscribed cores are noisy: the
`timing` values differ between runs, everything else is deterministic.

    python -m steps.oneflow.pipeline scale=mini io.metrics=results/oneflow/pipeline.json
"""

from __future__ import annotations

import itertools
import time

from omegaconf import DictConfig

from steps.core import metrics, spawn
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.oneflow import actors, common, mlp


def key(m: int, q: int) -> str:
    return f"m{m}_q{q}"


def worker(rank: int, world: int, X, Y, settings: list, hidden: int, batch: int, seed: int, lr: float,
           steps: int, every_s: float) -> dict:
    out = {}
    prog = Progress(len(settings), "pipeline settings", every_s=every_s) if rank == 0 else None
    for m, q in settings:
        stage = actors.Stage(rank, world, mlp.init_params(hidden, seed), hidden, batch)
        idx = mlp.batch_indices(seed, 0, batch, len(Y))
        stage.warm_up(list(X[idx].chunk(m)), list(Y[idx].chunk(m)), q)
        stats = []
        for step in range(steps):
            idx = mlp.batch_indices(seed, step, batch, len(Y))
            stats.append(stage.step(list(X[idx].chunk(m)), list(Y[idx].chunk(m)), q, lr))
        out[key(m, q)] = {"idle": [actors.idle_fraction(s) for s in stats], "peak": max(s.peak_inflight for s in stats),
                          "span": [s.span for s in stats], "events": stats[-1].events, "records": stage.records}
        if prog:
            prog.update(1)
    return out


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "metrics")
    t0 = time.monotonic()
    common.setup(cfg)
    world, pc, seed = int(cfg.group.world), cfg.pipeline, int(cfg.model.seed)
    settings = [(int(m), int(q)) for m, q in itertools.product(pc.micro_batches, pc.quota)]
    X, Y = mlp.digits()
    log.info(f"pipeline: {world} stages, B={pc.batch}, H={pc.hidden}, settings (m, q) {settings}")
    res = spawn.run_group(worker, world, (X, Y, settings, int(pc.hidden), int(pc.batch), seed, float(pc.lr),
                                          int(pc.steps), float(cfg.progress.every_s)), cfg, float(cfg.group.timeout_s))
    idle, peak, timing, bytes_ = {}, {}, {}, {}
    worst = -10**9
    for m, q in settings:
        k = key(m, q)
        per_stage = [sum(r[k]["idle"]) / len(r[k]["idle"]) for r in res]
        idle[k] = {"mean": sum(per_stage) / len(per_stage), "per_stage": per_stage}
        peaks = [r[k]["peak"] for r in res]
        peak[k] = {"max": max(peaks), "per_stage": peaks, "quota": q}
        worst = max(worst, max(peaks) - q)
        spans = res[0][k]["span"]
        timing[k] = {"step_s": sum(spans) / len(spans)}
        t = common.tally([r[k]["records"] for r in res], int(pc.steps) + 0)
        bytes_[k] = {"measured_per_iter": t["measured_per_iter"], "predicted_per_iter": t["predicted_per_iter"],
                     "max_abs_mismatch": t["max_abs_mismatch"]}
    values = {"idle": idle, "peak_inflight": peak, "peak_minus_quota_max": worst, "bytes": bytes_,
              "bytes_max_abs_mismatch": max(b["max_abs_mismatch"] for b in bytes_.values()), "timing": timing}
    show = key(max(int(m) for m in pc.micro_batches), 2 if 2 in pc.quota else int(pc.quota[0]))
    extra = {"timeline": {"setting": show, "events_per_stage": [r[show]["events"] for r in res]},
             "nondeterministic": ["idle", "timing", "peak_inflight (schedule depends on message arrival)"]}
    metrics.write(out, cfg, "pipeline", f"Actor runtime, {world} stages: idle fraction and peak in-flight "
                  "micro-batches per stage over micro-batches m and register quota q", values, time.monotonic() - t0,
                  f"cpu, {world} gloo processes", extra=extra,
                  # the forward actor fires only while fewer than q micro-batches hold a register
                  # (actors.Stage.step): peak ≤ q holds by construction, a count the runtime bounds
                  accounting=["peak_inflight", "peak_minus_quota_max"])
    log.info("pipeline: idle " + ", ".join(f"{k} {v['mean']:.2f}" for k, v in idle.items()) + f"; peak - quota ≤ {worst}")
    return values


if __name__ == "__main__":
    run(main, "oneflow", "pipeline")
