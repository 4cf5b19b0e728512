"""Phase `sync` (E3): how often the serving PS syncs sparse parameters from the training PS.

Batch-train days 1..batch_days, then stream the remaining days with progressive validation;
one serving PS per sync interval (never, 1 day, 1/8 day, 1/64 day; dense params daily), all
fed by the same training PS. AUC of each serving PS's predictions over the streamed days,
per day, and the training PS's own (instant sync) for reference.

    python -m steps.monolith.sync scale=mini io.stream=data/monolith/stream.parquet io.metrics=results/monolith/sync.json
"""

from __future__ import annotations

import math
import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from steps.core import metrics
from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.monolith import online
from steps.monolith.collisionless import select
from steps.monolith.common import auc, load_stream, setup, split_at_day


def by_day(s, lo: int, days: int, y: np.ndarray, score: np.ndarray) -> dict:
    out = {}
    for d in range(1, days + 1):
        a, b = split_at_day(s, d - 1.0) - lo, split_at_day(s, float(d)) - lo
        if b > max(a, 0):
            out[f"d{d}"] = auc(y[max(a, 0):b], score[max(a, 0):b])
    return out


def main(cfg: DictConfig) -> dict:
    stream_path, out = need_io(cfg, "stream", "metrics")
    t0 = time.monotonic()
    dev = setup(cfg)
    s = load_stream(stream_path, list(cfg.model.features))
    days = math.ceil(float(s.t.max()))
    intervals = select(OmegaConf.to_container(cfg.sync.intervals), cfg.sync.run, "sync")
    arms = [*intervals, "trainer"]
    seeds = [int(x) for x in cfg.seeds]
    done = Snapshots()
    loop = TrainLoop(cfg, out, total=len(seeds), desc="E3 online runs", results=done)
    for i in loop:
        seed = seeds[i]
        sys_, lo = online.start(cfg, s, seed, intervals)
        preds = online.empty_preds(arms, len(s) - lo)
        online.stream(sys_, s, lo, len(s), int(cfg.model.batch), preds, lo, float(cfg.progress.every_s))
        y = s.y[lo:]
        r = {"auc": {a: auc(y, preds[a]) for a in arms}, "by_day": {a: by_day(s, lo, days, y, preds[a]) for a in arms},
             "syncs": {a: sys_.servers[a].syncs for a in intervals},
             "rows_pushed": {a: sys_.servers[a].rows_pushed for a in intervals}}
        done[str(seed)] = r
        log.info(f"E3 seed {seed}: " + ", ".join(f"{a} {v:.4f}" for a, v in r["auc"].items()))
    lo = split_at_day(s, float(cfg.online.batch_days))
    values = {
        "auc": {a: metrics.summary([done[str(sd)]["auc"][a] for sd in seeds]) for a in arms},
        "auc_by_day": {a: {d: metrics.summary([done[str(sd)]["by_day"][a][d] for sd in seeds])
                           for d in done[str(seeds[0])]["by_day"][a]} for a in arms},
        "rows_pushed": {a: metrics.summary([done[str(sd)]["rows_pushed"][a] for sd in seeds]) for a in intervals},
        "bayes_auc": auc(s.y[lo:], s.p[lo:]) if s.p is not None else None,
        "stream_events": int(len(s) - lo),
    }
    metrics.write(out, cfg, "sync", "E3: serving AUC (progressive validation) against the sparse sync interval",
                  values, time.monotonic() - t0, dev)
    loop.finish()
    return values


if __name__ == "__main__":
    run(main, "monolith", "sync")
