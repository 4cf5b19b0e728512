"""Phase `collisionless` (E1): the collisionless cuckoo table against hash-trick tables.

Each arm trains the same model in one time-ordered pass over all days but the last
`test_days` and is tested on those (AUC, scikit-learn). Arms (params collisionless.arms):
the cuckoo table, a frequency-filtered cuckoo table, hash-trick tables of fixed M, a hash
table of the filtered cuckoo's memory (allocated bytes per feature: every array of the cuckoo
table at its capacity, against the hash table's arrays: equal memory),
and a hash table with M >> #IDs² (no collisions w.h.p.; must match the cuckoo table).

    python -m steps.monolith.collisionless scale=mini io.stream=data/monolith/stream.parquet io.metrics=results/monolith/collisionless.json
"""

from __future__ import annotations

import math
import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from steps.core import metrics
from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
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
from steps.nn.embedding_table import rows_for_bytes


def select(arms: dict, run, section: str) -> dict:
    """The arms `run` names (all when null), or a ConfigError naming the valid ones."""
    if run is None:
        return arms
    unknown = [a for a in run if a not in arms]
    if unknown:
        raise ConfigError(f"{section}.run names unknown arm(s) {', '.join(unknown)}; valid: {', '.join(arms)}")
    return {a: arms[a] for a in run}


def arm_order(arms: dict) -> list[str]:
    """Arms sized by another arm's memory run after it."""
    first = [a for a, s in arms.items() if not s.get("memory_of")]
    later = [a for a, s in arms.items() if s.get("memory_of")]
    for a in later:
        if arms[a]["memory_of"] not in first:
            raise ConfigError(f"collisionless.arms.{a}.memory_of names '{arms[a]['memory_of']}', not an arm with its own size")
    return first + later


def collision_rates(stats: dict) -> dict:
    """Share of distinct IDs that share their embedding row with another ID, per feature."""
    out = {}
    for f, st in stats["per_feature"].items():
        n = st.get("ids_seen", st["rows"])
        out[f] = st["collisions"] / n if n else 0.0
    return out


def run_arm(cfg, s, feats, spec: dict, seed: int, test_lo: int, rows_for=None) -> dict:
    model = Model.build(cfg.model, feats, lambda f: spec, seed, rows_for)
    train_pass(model, s, 0, test_lo, int(cfg.model.batch), desc=f"E1 seed {seed} events", every_s=float(cfg.progress.every_s))
    pred = predict(model, s, test_lo, len(s))
    st = table_stats(model)
    return {"auc": auc(s.y[test_lo:], pred), "collision_rate": collision_rates(st), **st}


def main(cfg: DictConfig) -> dict:
    stream_path, out = need_io(cfg, "stream", "metrics")
    t0 = time.monotonic()
    dev = setup(cfg)
    feats = list(cfg.model.features)
    s = load_stream(stream_path, feats)
    days = math.ceil(float(s.t.max()))
    test_lo = split_at_day(s, days - int(cfg.collisionless.test_days))
    arms = select(OmegaConf.to_container(cfg.collisionless.arms), cfg.collisionless.run, "collisionless")
    order = arm_order(arms)
    runs = [(a, int(seed)) for seed in cfg.seeds for a in order]
    done = Snapshots()
    loop = TrainLoop(cfg, out, total=len(runs), desc="E1 table runs", results=done)
    for i in loop:
        arm, seed = runs[i]
        spec = arms[arm]
        rows_for = None
        if spec.get("memory_of"):
            ref = done[f"{spec['memory_of']}|{seed}"]["per_feature"]
            rows_for = lambda f, ref=ref: rows_for_bytes(ref[f]["alloc_bytes"], int(cfg.model.dim))  # noqa: E731
        r = run_arm(cfg, s, feats, spec, seed, test_lo, rows_for)
        done[f"{arm}|{seed}"] = r
        log.info(f"E1 {arm} seed {seed}: AUC {r['auc']:.4f}, rows {r['rows']}, MB live {r['bytes'] / 2**20:.1f} "
                 f"allocated {r['alloc_bytes'] / 2**20:.1f}, "
                 f"collisions user {r['collision_rate']['user']:.3f} item {r['collision_rate']['item']:.3f}")
    seeds = [int(x) for x in cfg.seeds]
    per = {a: [done[f"{a}|{sd}"] for sd in seeds] for a in order}
    values = {
        "auc": {a: metrics.summary([r["auc"] for r in rs]) for a, rs in per.items()},
        "bytes": {a: metrics.summary([r["bytes"] for r in rs]) for a, rs in per.items()},
        "alloc_bytes": {a: metrics.summary([r["alloc_bytes"] for r in rs]) for a, rs in per.items()},
        "rows": {a: metrics.summary([r["rows"] for r in rs]) for a, rs in per.items()},
        "collisions": {a: int(sum(r["collisions"] for r in rs)) for a, rs in per.items()},
        "collision_rate": {a: {f: float(np.mean([r["collision_rate"][f] for r in rs])) for f in ("user", "item")}
                           for a, rs in per.items()},
        "gain_vs_cuckoo": {a: metrics.summary([done[f"cuckoo|{sd}"]["auc"] - done[f"{a}|{sd}"]["auc"] for sd in seeds])
                           for a in order if a != "cuckoo" and "cuckoo" in arms},
        "bayes_auc": auc(s.y[test_lo:], s.p[test_lo:]) if s.p is not None else None,
        "test_events": int(len(s) - test_lo),
    }
    extra = {"per_feature": {a: rs[0]["per_feature"] for a, rs in per.items()}}
    metrics.write(out, cfg, "collisionless", "E1: AUC on the last day, collisionless vs hash-trick tables", values,
                  time.monotonic() - t0, dev, extra=extra)
    loop.finish()
    return values


if __name__ == "__main__":
    run(main, "monolith", "collisionless")
