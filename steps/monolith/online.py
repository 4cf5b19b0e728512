"""Monolith's online training (§2.2-2.3) replayed on a time-ordered stream.

A batch stage trains the training PS on the first `batch_days`; its parameters are handed over
in full to the serving PS(s). Then every batch of the stream is first *served* (each serving
PS predicts it: progressive validation, so no event is predicted by a model that trained on
it) and then *trained on* by the training PS. Each serving PS pulls the sparse rows touched
since its last sync every `interval` days, and the dense MLP every `dense_sync_days`.
Kafka and the online joiner are replaced by this replay: labels arrive with their events.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from steps.core.progress import Progress
from steps.monolith.common import Stream, batches, split_at_day, train_pass
from steps.monolith.model import Model, Schedule, Serving


@dataclass
class System:
    model: Model
    servers: dict          # arm -> Serving
    sparse: dict           # arm -> Schedule
    dense: dict            # arm -> Schedule

    def copy(self) -> System:
        """A snapshot of the training and serving PS (and where their sync clocks stand)."""
        return copy.deepcopy(self)


def start(cfg, s: Stream, seed: int, intervals: dict) -> tuple[System, int]:
    """Batch-train on the first `online.batch_days`, hand over to one serving PS per arm;
    returns the system and the index of the first streamed event."""
    spec = {"kind": "cuckoo", "min_count": int(cfg.online.min_count), "expiry_days": None}
    model = Model.build(cfg.model, list(cfg.model.features), lambda f: spec, seed)
    lo = split_at_day(s, float(cfg.online.batch_days))
    train_pass(model, s, 0, lo, int(cfg.model.batch), desc=f"batch stage seed {seed} events", every_s=float(cfg.progress.every_s))
    t = float(s.t[lo - 1])
    dense = float(cfg.online.dense_sync_days)
    servers = {arm: Serving(model) for arm in intervals}
    return System(model, servers, {a: Schedule(iv, t) for a, iv in intervals.items()},
                  {a: Schedule(dense, t) for a in intervals}), lo


def stream(sys_: System, s: Stream, a: int, b: int, batch: int, preds: dict, offset: int, every_s: float = 30.0) -> None:
    """Serve, then train on, events [a, b); predictions go to preds[arm][i - offset]
    (preds["trainer"], when present: the training PS's own, i.e. instant sync)."""
    m = sys_.model
    progress = Progress(b - a, "online stage events", every_s, tty=False)
    for x, y in batches(a, b, batch):
        keys = s.take(slice(x, y))
        for arm, sv in sys_.servers.items():
            preds[arm][x - offset:y - offset] = sv.predict(m, keys)
        if "trainer" in preds:
            preds["trainer"][x - offset:y - offset] = m.predict(keys)
        t = float(s.t[y - 1])
        loss, touched = m.train_batch(keys, s.y[x:y], t)
        for arm, sv in sys_.servers.items():
            sv.mark(touched)
            if sys_.sparse[arm].due(t):
                sv.sync_sparse(m)
            if sys_.dense[arm].due(t):
                sv.sync_dense(m)
        progress.update(y - x, loss=loss)


def empty_preds(arms, n: int) -> dict:
    return {a: np.full(n, np.nan) for a in arms}
