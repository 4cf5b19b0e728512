"""What the experiments share: the stream as arrays, one-pass training, AUC.

A run trains in time order, batch by batch, exactly once over its events (online training
sees each event once); `expire` sweeps run on the table's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from steps.core.io import load_parquet
from steps.core.progress import Progress
from steps.monolith.model import Model, Schedule


@dataclass
class Stream:
    t: np.ndarray
    y: np.ndarray
    p: np.ndarray | None          # the true p(click) (synthetic stream only)
    keys: dict                    # feature -> int64 IDs

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx) -> dict:
        return {f: k[idx] for f, k in self.keys.items()}


def load_stream(path: str, features) -> Stream:
    df = load_parquet(path, "click stream")
    missing = [c for c in ("t", "click", *features) if c not in df.columns]
    if missing:
        from steps.core.errors import ArtifactError

        raise ArtifactError(f"click stream {path} lacks columns {', '.join(missing)}")
    return Stream(t=df["t"].to_numpy(np.float64), y=df["click"].to_numpy(np.int8),
                  p=df["p"].to_numpy(np.float64) if "p" in df.columns else None,
                  keys={f: df[f].to_numpy(np.int64) for f in features})


def batches(lo: int, hi: int, size: int):
    for s in range(lo, hi, size):
        yield s, min(hi, s + size)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (scikit-learn); NaN when only one class is present."""
    return float(roc_auc_score(y, score)) if 0 < int(np.sum(y)) < len(y) else float("nan")


def train_pass(model: Model, s: Stream, lo: int, hi: int, batch: int, expire_every: float | None = None,
               desc: str | None = None, every_s: float = 30.0) -> list[float]:
    """One pass over events [lo, hi) in time order; returns the per-batch losses. With `desc`,
    progress lines (events done, loss) at most every `every_s` seconds."""
    sweep = Schedule(expire_every, float(s.t[lo]) if hi > lo else 0.0)
    progress = Progress(hi - lo, desc, every_s, tty=False) if desc else None
    losses = []
    for a, b in batches(lo, hi, batch):
        t = float(s.t[b - 1])
        loss, _ = model.train_batch(s.take(slice(a, b)), s.y[a:b], t)
        losses.append(loss)
        if expire_every is not None and sweep.due(t):
            model.expire(t)
        if progress is not None:
            progress.update(b - a, loss=loss)
    return losses


def predict(model: Model, s: Stream, lo: int, hi: int, batch: int = 8192) -> np.ndarray:
    return np.concatenate([model.predict(s.take(slice(a, b))) for a, b in batches(lo, hi, batch)]) if hi > lo else np.empty(0)


def split_at_day(s: Stream, day_start: float) -> int:
    """Index of the first event at or after time `day_start`."""
    return int(np.searchsorted(s.t, day_start, side="left"))


def table_stats(model: Model) -> dict:
    """Rows, bytes and collisions per feature and in total. `bytes`: the live state (rows held,
    cuckoo slots); `alloc_bytes`: every array the table holds at its capacity (what equal-memory
    comparisons use; steps.nn.embedding_table, CollisionlessTable.allocated_bytes)."""
    per = {}
    for f, tab in model.tables.items():
        row = {"rows": len(tab), "peak_rows": tab.peak_rows, "bytes": tab.live_bytes(),
               "alloc_bytes": tab.allocated_bytes(), "collisions": tab.collisions()}
        if hasattr(tab, "n_seen"):
            row["ids_seen"] = tab.n_seen()
        per[f] = row
    total = {k: sum(v[k] for v in per.values()) for k in ("rows", "peak_rows", "bytes", "alloc_bytes", "collisions")}
    return {"per_feature": per, **total}


def setup(cfg) -> str:
    """CPU, one thread: the sparse tables are Python/CPU work and every tensor op is small
    (batch 512 × dim 16), so intra-op threads only add contention. Returns the device line."""
    from steps.core import device

    return device.setup("cpu", 1)[1]
