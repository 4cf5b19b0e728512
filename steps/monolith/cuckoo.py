"""Phase `cuckoo`: the collisionless table's unit test on random IDs, as a metrics file.

Inserts `n_keys` distinct random 64-bit IDs (uint64, the whole range; 0, 2^63-1, 2^63 and
2^64-1 among them: Monolith's IDs are 64-bit) into a CuckooHashMap (growth at load 0.5), then
checks that none is lost, every lookup returns exactly its own value, absent keys miss (the
extremes too, once deleted), and that a CollisionlessTable gives the IDs pairwise distinct rows.

    python -m steps.monolith.cuckoo scale=mini io.metrics=results/monolith/cuckoo.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.nn.cuckoo import CuckooHashMap
from steps.nn.embedding_table import CollisionlessTable

# The ends of the signed and unsigned halves; 2^64-1 has the bits of an empty slot's marker (-1).
EXTREMES = np.array([0, 1, 2**63 - 2, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1], dtype=np.uint64)


def ids64(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 64-bit IDs (uint64) in random order: EXTREMES (n >= 8) and uniform draws."""
    ids = np.unique(np.concatenate([EXTREMES, rng.integers(0, 2**64, size=n + 16, dtype=np.uint64)]))
    while len(ids) < n:
        ids = np.unique(np.concatenate([ids, rng.integers(0, 2**64, size=n, dtype=np.uint64)]))
    rest = rng.permutation(ids[~np.isin(ids, EXTREMES)])[: n - min(n, len(EXTREMES))]
    return rng.permutation(np.concatenate([EXTREMES[:n], rest]))


def check(n: int, seed: int, capacity: int) -> dict:
    rng = np.random.default_rng(seed)
    keys = ids64(rng, n)
    m = CuckooHashMap(capacity=capacity, seed=seed)
    t0 = time.perf_counter()
    m.insert_many(keys, np.arange(n))
    insert_s = time.perf_counter() - t0
    got = m.get(keys)
    absent = np.random.default_rng(seed + 1).integers(0, 2**64, size=n, dtype=np.uint64)
    absent = absent[~np.isin(absent, keys)]
    table = CollisionlessTable(dim=4, seed=seed, capacity=capacity)
    rows = table.rows_for_train(keys, 0.0)
    st = m.stats()
    size = m.size
    ends = np.isin(keys, EXTREMES)
    m.delete(keys[ends])                           # the extremes gone, the rest still exact
    wrong_after = int((m.get(keys[~ends]) != np.flatnonzero(~ends)).sum())
    return {
        "inserted": n, "size": size, "lost_keys": int(n - size),
        "wrong_lookups": int((got != np.arange(n)).sum()) + wrong_after,
        "false_hits": int((m.get(absent) != -1).sum()) + int((m.get(keys[ends]) != -1).sum()),
        "table_collisions": int(n - len(np.unique(rows))) + int((rows < 0).sum()) + table.collisions(),
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
