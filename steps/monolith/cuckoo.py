"""Phase `cuckoo`: the collisionless table's unit test on random IDs, as a metrics file.

Inserts `n_keys` distinct random 62-bit IDs into a CuckooHashMap (growth at load 0.5), then
checks that none is lost, every lookup returns exactly its own value, absent keys miss, and
that a CollisionlessTable gives the IDs pairwise distinct rows.

    python -m steps.monolith.cuckoo scale=mini io.metrics=results/monolith/cuckoo.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.data.click_stream import random_ids
from steps.nn.cuckoo import CollisionlessTable, CuckooHashMap


def check(n: int, seed: int, capacity: int) -> dict:
    rng = np.random.default_rng(seed)
    keys = random_ids(rng, n, bits=62)
    m = CuckooHashMap(capacity=capacity, seed=seed)
    t0 = time.perf_counter()
    m.insert_many(keys, np.arange(n))
    insert_s = time.perf_counter() - t0
    got = m.get(keys)
    absent = random_ids(np.random.default_rng(seed + 1), n, bits=62)
    absent = absent[~np.isin(absent, keys)]
    table = CollisionlessTable(dim=4, seed=seed, capacity=capacity)
    rows = table.rows_for_train(keys, 0.0)
    st = m.stats()
    return {
        "inserted": n, "size": m.size, "lost_keys": int(n - m.size),
        "wrong_lookups": int((got != np.arange(n)).sum()),
        "false_hits": int((m.get(absent) != -1).sum()),
        "table_collisions": int(n - len(np.unique(rows))) + int((rows < 0).sum()),
        "load_factor": st["load_factor"], "capacity": st["capacity"], "rehashes": st["rehashes"],
        "cycles": st["cycles"], "longest_chain": st["longest_chain"], "mean_kicks": st["mean_kicks"],
        "insert_us": 1e6 * insert_s / n,
    }


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "metrics")
    t0 = time.monotonic()
    c = cfg.cuckoo_test
    values = check(int(c.n_keys), int(c.seed), int(c.initial_capacity))
    timing = {"insert_us": values.pop("insert_us")}  # not a metric: it varies between runs
    log.info(f"cuckoo unit test: {values} {timing}")
    metrics.write(out, cfg, "cuckoo", f"collisionless table unit test: {values['inserted']} random IDs", values,
                  time.monotonic() - t0, "cpu", extra={"timing": timing})
    return values


if __name__ == "__main__":
    run(main, "monolith", "cuckoo")
