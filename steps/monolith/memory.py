"""Phase `memory` (E2): frequency filtering × embedding expiry on the collisionless table.

For each filter f (an ID gets a row after f sightings) and expiry T (rows idle for T days
are evicted; null = never), train one time-ordered pass over all days but the last and test
on it. Reports the live rows at the end of training (and their peak), bytes (live state, and
allocated: every array at its capacity), and AUC.

    python -m steps.monolith.memory scale=mini io.stream=data/monolith/stream.parquet io.metrics=results/monolith/memory.json
"""

from __future__ import annotations

import math
import time

from omegaconf import DictConfig

from steps.core import metrics
from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.monolith.common import (
    auc,
    load_stream,
    predict,
    setup,
    split_at_day,
    table_stats,
    train_pass,
)
from steps.monolith.model import Model


def arm_name(f: int, expiry) -> str:
    return f"f{int(f)}_t" + ("inf" if expiry is None else f"{float(expiry):g}".replace(".", "p"))


def main(cfg: DictConfig) -> dict:
    stream_path, out = need_io(cfg, "stream", "metrics")
    t0 = time.monotonic()
    dev = setup(cfg)
    feats = list(cfg.model.features)
    s = load_stream(stream_path, feats)
    days = math.ceil(float(s.t.max()))
    c = cfg.memory
    test_lo = split_at_day(s, days - int(c.test_days))
    specs = {arm_name(f, e): {"kind": "cuckoo", "min_count": int(f), "expiry_days": None if e is None else float(e)}
             for f in c.min_counts for e in c.expiry_days}
    runs = [(a, int(seed)) for seed in cfg.seeds for a in specs]
    done = Snapshots()
    loop = TrainLoop(cfg, out, total=len(runs), desc="E2 filter/expiry runs", results=done)
    batch = int(cfg.model.batch)
    for i in loop:
        arm, seed = runs[i]
        spec = specs[arm]
        model = Model.build(cfg.model, feats, lambda f, spec=spec: spec, seed)
        trace, lo = [], 0
        for d in range(1, days - int(c.test_days) + 1):  # day by day, to trace the rows
            hi = split_at_day(s, float(d))
            train_pass(model, s, lo, hi, batch, expire_every=None if spec["expiry_days"] is None else float(c.expire_every_days),
                       desc=f"E2 {arm} seed {seed} day {d}", every_s=float(cfg.progress.every_s))
            trace.append(sum(len(t) for t in model.tables.values()))
            lo = hi
        st = table_stats(model)
        r = {"auc": auc(s.y[test_lo:], predict(model, s, test_lo, len(s))), "rows": st["rows"],
             "peak_rows": st["peak_rows"], "bytes": st["bytes"], "alloc_bytes": st["alloc_bytes"], "rows_by_day": trace,
             "id_rows": st["per_feature"]["user"]["rows"] + st["per_feature"]["item"]["rows"]}
        done[f"{arm}|{seed}"] = r
        log.info(f"E2 {arm} seed {seed}: AUC {r['auc']:.4f}, rows {r['rows']} (peak {r['peak_rows']}), "
                 f"MB live {r['bytes'] / 2**20:.1f} allocated {r['alloc_bytes'] / 2**20:.1f}")
    seeds = [int(x) for x in cfg.seeds]
    values = {key: {a: metrics.summary([done[f"{a}|{sd}"][key] for sd in seeds]) for a in specs}
              for key in ("auc", "rows", "peak_rows", "bytes", "alloc_bytes")}
    values["rows_by_day"] = {a: done[f"{a}|{seeds[0]}"]["rows_by_day"] for a in specs}
    metrics.write(out, cfg, "memory", "E2: table rows and AUC under frequency filtering and expiry", values,
                  time.monotonic() - t0, dev)
    loop.finish()
    return values


if __name__ == "__main__":
    run(main, "monolith", "memory")
