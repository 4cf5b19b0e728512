"""Phase `movielens`: the table comparison on a real stream, MovieLens ratings in time order.

Online training with progressive validation (each batch is predicted, then trained on; the
training PS serves itself: instant sync), one pass over the whole stream, for the cuckoo table
and hash-trick tables of a few sizes. AUC over the events after the first `eval_after` share.
Also the share of users and movies that collide under the hash trick at several table sizes
(the paper's MovieLens collision analysis).

    python -m steps.monolith.movielens scale=mini io.stream=data/monolith/movielens.parquet io.metrics=results/monolith/movielens.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from steps.core import metrics, seeding
from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.monolith.common import auc, batches, load_stream, setup, table_stats
from steps.monolith.model import Model
from steps.nn.embedding_table import collision_rate


def progressive(model: Model, s, batch: int) -> np.ndarray:
    """Predict each batch before training on it; returns the predictions."""
    out = np.empty(len(s))
    for a, b in batches(0, len(s), batch):
        keys = s.take(slice(a, b))
        out[a:b] = model.predict(keys)
        model.train_batch(keys, s.y[a:b], float(s.t[b - 1]))
    return out


def main(cfg: DictConfig) -> dict:
    stream_path, out = need_io(cfg, "stream", "metrics")
    t0 = time.monotonic()
    dev = setup(cfg)
    c = cfg.movielens
    feats = list(c.features)
    s = load_stream(stream_path, feats)
    ev = int(len(s) * float(c.eval_after))
    arms = OmegaConf.to_container(c.arms)
    seeds = [int(x) for x in cfg.seeds]
    runs = [(a, sd) for sd in seeds for a in arms]
    done = Snapshots()
    loop = TrainLoop(cfg, out, total=len(runs), desc="MovieLens runs", results=done)
    for i in loop:
        arm, seed = runs[i]
        model = Model.build(cfg.model, feats, lambda f, arm=arm: arms[arm], seed)
        pred = progressive(model, s, int(cfg.model.batch))
        st = table_stats(model)
        done[f"{arm}|{seed}"] = r = {"auc": auc(s.y[ev:], pred[ev:]), "bytes": st["bytes"], "alloc_bytes": st["alloc_bytes"],
                                     "rows": st["rows"]}
        log.info(f"MovieLens {arm} seed {seed}: AUC {r['auc']:.4f}, rows {r['rows']}")
    salts = [seeding.derive(sd, "movielens.collisions") for sd in seeds]
    coll = {f"m{int(m)}": {f: float(np.mean([collision_rate(s.keys[f], int(m), salt) for salt in salts]))
                           for f in ("user", "movie")} for m in c.collision_table_rows}
    values = {
        "auc": {a: metrics.summary([done[f"{a}|{sd}"]["auc"] for sd in seeds]) for a in arms},
        "bytes": {a: metrics.summary([done[f"{a}|{sd}"]["bytes"] for sd in seeds]) for a in arms},
        "alloc_bytes": {a: metrics.summary([done[f"{a}|{sd}"]["alloc_bytes"] for sd in seeds]) for a in arms},
        "collision_rate": coll,
        "ids": {f: int(len(np.unique(s.keys[f]))) for f in feats},
        "events": len(s), "eval_events": int(len(s) - ev), "positive_rate": float(s.y.mean()),
    }
    metrics.write(out, cfg, "movielens", "MovieLens (real stream): progressive-validation AUC by table type, hash collision rates",
                  values, time.monotonic() - t0, dev)
    loop.finish()
    return values


if __name__ == "__main__":
    run(main, "monolith", "movielens")
