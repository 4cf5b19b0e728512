"""The collisionless table's key → row index (steps.nn.cuckoo.KeyIndex: Monolith's two-table
cuckoo hashmap, §2.1) beside Python's built-in dict, CPython's open-addressing hash table —
the library a Python implementation would otherwise use. Monolith's own HashTable is C++
inside its TensorFlow build (bytedance/monolith, built with Bazel), which no package installs.

    python -m steps.core.bench_official monolith

Configuration: one mini day of the click stream's user IDs (params/monolith: Zipf(1.1) over
200k random 40-bit IDs, 40k events, batches of 512, initial capacity 16384). One timed run =
what CollisionlessTable.rows_for_train does to the index for every batch with min_count 1:
look the batch up, add its unseen IDs (sorted, deduplicated) as new rows, look it up again.
The dict arm does the same with `dict.get` and insertion. Checked: identical rows for every event.
"""

from __future__ import annotations

import numpy as np

from steps.core.bench_official import Arm, Case

N_USERS, ZIPF_A, EVENTS, BATCH, CAPACITY, SEED = 200_000, 1.1, 40_000, 512, 16384, 0


def batches() -> list[np.ndarray]:
    from steps.data.click_stream import random_ids, zipf_probs

    rng = np.random.default_rng(SEED)
    users = random_ids(rng, N_USERS)
    events = users[rng.choice(N_USERS, size=EVENTS, p=zipf_probs(N_USERS, ZIPF_A))]
    return [events[i:i + BATCH] for i in range(0, EVENTS, BATCH)]


def ours_arm(bs: list[np.ndarray]) -> Arm:
    from steps.nn.cuckoo import KeyIndex

    def run(index):
        out = []
        for keys in bs:
            rows = index.lookup(keys)
            missing = rows < 0
            if missing.any():
                index.add(np.unique(keys[missing]))
                rows = index.lookup(keys)
            out.append(rows)
        return np.concatenate(out)

    return Arm(lambda: KeyIndex(seed=SEED, capacity=CAPACITY), run)


def dict_arm(bs: list[np.ndarray]) -> Arm:
    def lookup(d: dict, keys: list[int]) -> np.ndarray:
        get = d.get
        return np.fromiter((get(k, -1) for k in keys), np.int64, len(keys))

    def run(d):
        out = []
        for keys in bs:
            kl = keys.tolist()
            rows = lookup(d, kl)
            missing = rows < 0
            if missing.any():
                for k in np.unique(keys[missing]).tolist():
                    d[k] = len(d)
                rows = lookup(d, kl)
            out.append(rows)
        return np.concatenate(out)

    return Arm(dict, run)


def check(ours: np.ndarray, official: np.ndarray) -> tuple[bool, str]:
    same = bool(np.array_equal(ours, official))
    return same, f"rows of all {len(ours)} events {'identical' if same else 'differ'}; {len(np.unique(ours))} distinct IDs"


def cases(official_path: str | None = None) -> list[Case]:
    """KeyIndex against dict (official_path unused: the official table is not installable)."""
    bs = batches()
    config = (f"{EVENTS // 1000}k events of Zipf({ZIPF_A}) users over {N_USERS // 1000}k IDs, batches of {BATCH}, "
              f"initial capacity {CAPACITY}")
    return [Case("monolith", "key → row index", config, "Python dict", ours_arm(bs), dict_arm(bs), check=check,
                 notes=["Monolith's HashTable (C++, TensorFlow) is not installable; dict is the library stand-in"])]
