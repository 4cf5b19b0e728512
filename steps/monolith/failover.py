"""Phase `failover` (E4): a PS failure restored from a snapshot of a given age.

The online system of E3 (one serving PS, sparse sync every `sync_days`) streams until
`fail_at`; there the training and serving PS fail and are restored from a snapshot taken
`age` days earlier (the updates in between are lost; the stream continues from the failure
on). Arms: no failure, and each snapshot age. AUC over the events from `eval_from` on.

    python -m steps.monolith.failover scale=mini io.stream=data/monolith/stream.parquet io.metrics=results/monolith/failover.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from steps.core import metrics
from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.monolith import online
from steps.monolith.common import auc, load_stream, setup, split_at_day


def run_seed(cfg, s, seed: int) -> dict:
    c = cfg.failover
    ages = OmegaConf.to_container(c.snapshot_ages)
    sys_, lo = online.start(cfg, s, seed, {"serving": float(c.sync_days)})
    fail = split_at_day(s, float(c.fail_at))
    ev = split_at_day(s, float(c.eval_from))
    if not lo <= ev <= fail < len(s):
        raise ConfigError(f"failover: need batch_days <= eval_from <= fail_at < end of stream (got {cfg.online.batch_days}, "
                          f"{c.eval_from}, {c.fail_at})")
    cuts = sorted({split_at_day(s, float(c.fail_at) - float(a)) for a in ages.values()} | {fail})
    if cuts[0] < lo:
        raise ConfigError("failover: a snapshot would predate the online stage; lower snapshot_ages or raise fail_at")
    batch = int(cfg.model.batch)
    shared = {"serving": np.full(len(s) - lo, np.nan)}
    snaps, pos = {}, lo
    for cut in cuts:  # the live system up to the failure, snapshotting at each age's cut
        online.stream(sys_, s, pos, cut, batch, shared, lo, float(cfg.progress.every_s))
        snaps[cut] = sys_.copy() if cut != fail else sys_
        pos = cut
    arms = {"none": fail, **{a: split_at_day(s, float(c.fail_at) - float(age)) for a, age in ages.items()}}
    y = s.y[ev:]
    res = {"auc": {}, "auc_day_after": {}, "curve": {}}
    day_after = split_at_day(s, float(c.fail_at) + 1.0)
    for arm, cut in arms.items():
        system = snaps[cut] if arm == "none" else snaps[cut].copy()
        preds = {"serving": shared["serving"].copy()}
        online.stream(system, s, fail, len(s), batch, preds, lo, float(cfg.progress.every_s))
        score = preds["serving"][ev - lo:]
        res["auc"][arm] = auc(y, score)
        res["auc_day_after"][arm] = auc(s.y[fail:day_after], preds["serving"][fail - lo:day_after - lo])
        edges = np.arange(float(c.eval_from), float(np.ceil(s.t.max())) + 1e-9, 0.25)
        res["curve"][arm] = [auc(s.y[a:b], preds["serving"][a - lo:b - lo])
                             for a, b in ((split_at_day(s, e0), split_at_day(s, e1)) for e0, e1 in zip(edges[:-1], edges[1:], strict=True))]
    return res


def main(cfg: DictConfig) -> dict:
    stream_path, out = need_io(cfg, "stream", "metrics")
    t0 = time.monotonic()
    dev = setup(cfg)
    s = load_stream(stream_path, list(cfg.model.features))
    seeds = [int(x) for x in cfg.seeds]
    done = Snapshots()
    loop = TrainLoop(cfg, out, total=len(seeds), desc="E4 failover runs", results=done)
    for i in loop:
        done[str(seeds[i])] = r = run_seed(cfg, s, seeds[i])
        log.info(f"E4 seed {seeds[i]}: " + ", ".join(f"{a} {v:.4f}" for a, v in r["auc"].items()))
    arms = list(done[str(seeds[0])]["auc"])
    values = {
        "auc": {a: metrics.summary([done[str(sd)]["auc"][a] for sd in seeds]) for a in arms},
        "auc_day_after": {a: metrics.summary([done[str(sd)]["auc_day_after"][a] for sd in seeds]) for a in arms},
        "loss_vs_none": {a: metrics.summary([done[str(sd)]["auc"]["none"] - done[str(sd)]["auc"][a] for sd in seeds])
                         for a in arms if a != "none"},
        "curve": {a: [float(np.mean([done[str(sd)]["curve"][a][k] for sd in seeds])) for k in range(len(done[str(seeds[0])]["curve"][a]))]
                  for a in arms},
        "curve_step_days": 0.25,
        "curve_start": float(cfg.failover.eval_from),
        "fail_at": float(cfg.failover.fail_at),
    }
    metrics.write(out, cfg, "failover", "E4: serving AUC after a PS failure restored from snapshots of different ages",
                  values, time.monotonic() - t0, dev)
    loop.finish()
    return values


if __name__ == "__main__":
    run(main, "monolith", "failover")
