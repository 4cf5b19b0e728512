"""The miniature Monolith model and its two parameter servers.

Model (spec, mini): one embedding table per sparse feature (dim 16) -> concat -> MLP 64-32 ->
logit. Sparse parameters (embedding rows) use Adagrad, dense ones (the MLP) Adam, as in
Monolith's worker/PS training (§2.2). A `Model` is the *training* PS plus its worker; a
`Serving` copy is the *serving* PS, which only sees what parameter sync pushes to it (§2.3):
sparse rows touched since the last sync, at minute level, and the dense MLP less often.

    model = Model.build(cfg.model, table_spec, seed=0)
    loss, touched = model.train_batch(keys, y, t)    # keys: {feature: int64 IDs}
    p = model.predict(keys)
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from steps.core import seeding
from steps.nn.embedding_table import CollisionlessTable, HashTrickTable
from steps.nn.optim import Adam


def make_table(spec, dim: int, seed: int, cfg_model, rows_override: int | None = None):
    """A table from an arm's spec: {kind: cuckoo, min_count, expiry_days} or {kind: hash, rows}."""
    kind = spec["kind"]
    if kind == "cuckoo":
        c = cfg_model.cuckoo
        return CollisionlessTable(dim, seed, min_count=int(spec.get("min_count") or 1), expiry=spec.get("expiry_days"),
                                  init_std=float(cfg_model.init_std), capacity=int(c.initial_capacity),
                                  max_load=float(c.max_load), max_kicks=int(c.max_kicks))
    if kind == "hash":
        rows = rows_override if rows_override is not None else int(spec["rows"])
        return HashTrickTable(dim, seed, rows, init_std=float(cfg_model.init_std))
    raise ValueError(f"unknown table kind '{kind}' (cuckoo | hash)")


class Model:
    """Sparse tables + dense MLP; `train_batch` is one worker step against the training PS."""

    def __init__(self, tables: dict, hidden, sparse_lr: float, dense_lr: float, seed: int):
        self.tables = tables
        self.features = list(tables)
        dim = next(iter(tables.values())).dim
        torch.manual_seed(seeding.derive(seed, "mlp"))
        layers, width = [], dim * len(tables)
        for h in hidden:
            layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
            width = int(h)
        layers.append(torch.nn.Linear(width, 1))
        self.mlp = torch.nn.Sequential(*layers)
        # torch.optim.Adam's arithmetic without its first step's torch._dynamo import (steps.nn.optim)
        self.opt = Adam(self.mlp.parameters(), lr=dense_lr)
        self.sparse_lr = float(sparse_lr)

    @classmethod
    def build(cls, cfg_model, features, spec_for, seed: int, rows_for=None) -> Model:
        """One table per feature: `spec_for(feature)` gives its spec, `rows_for(feature)` an
        optional hash-table size (equal-memory arms)."""
        tables = {}
        for i, f in enumerate(features):
            rows = rows_for(f) if rows_for else None
            tables[f] = make_table(spec_for(f), int(cfg_model.dim), seeding.derive(seed, f"table.{f}") % 2**31 + i,
                                   cfg_model, rows)
        return cls(tables, list(cfg_model.hidden), float(cfg_model.sparse_lr), float(cfg_model.dense_lr), seed)

    def _logits(self, embs: list[torch.Tensor]) -> torch.Tensor:
        return self.mlp(torch.cat(embs, dim=1)).squeeze(1)

    def train_batch(self, keys: dict, y: np.ndarray, t: float) -> tuple[float, dict]:
        """One step: rows (admitting new IDs), forward, backward, Adam on the MLP, Adagrad on
        the touched rows. Returns the loss and {feature: rows touched}."""
        rows = {f: self.tables[f].rows_for_train(keys[f], t) for f in self.features}
        embs = [self.tables[f].store.gather(rows[f]).requires_grad_(True) for f in self.features]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(self._logits(embs), torch.from_numpy(y.astype(np.float32)))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        touched = {}
        with torch.no_grad():
            for f, e in zip(self.features, embs, strict=True):
                touched[f] = self.tables[f].store.adagrad(rows[f], e.grad, self.sparse_lr)
        return loss.item(), touched

    @torch.no_grad()
    def predict(self, keys: dict) -> np.ndarray:
        embs = [self.tables[f].store.gather(self.tables[f].rows(keys[f])) for f in self.features]
        return torch.sigmoid(self._logits(embs)).numpy()

    def expire(self, now: float) -> int:
        return sum(t.expire(now) for t in self.tables.values())

    def snapshot(self) -> Model:
        """A deep copy of the training PS (tables, MLP, optimiser state): a PS snapshot."""
        return copy.deepcopy(self)


class Serving:
    """The serving PS: its own copy of the embedding values and the MLP. It resolves IDs with
    the training PS's key index (one index for both; no expiry in the online experiments, so
    rows are never reused) and knows an ID only once a sync pushed that ID's row."""

    def __init__(self, model: Model):
        self.values = {f: model.tables[f].store.weight.clone() for f in model.features}
        self.known = {f: np.zeros(len(self.values[f]), dtype=bool) for f in model.features}
        self.dirty = {f: np.zeros(len(self.values[f]), dtype=bool) for f in model.features}
        self.mlp = copy.deepcopy(model.mlp)
        self.syncs = 0
        self.rows_pushed = 0
        self.full_sync(model)

    @staticmethod
    def _fit(a: np.ndarray, n: int) -> np.ndarray:
        return a if len(a) >= n else np.concatenate([a, np.zeros(max(n, 2 * len(a)) - len(a), dtype=a.dtype)])

    def mark(self, touched: dict) -> None:
        for f, rows in touched.items():
            if len(rows):
                self.dirty[f] = self._fit(self.dirty[f], int(rows.max()) + 1)
                self.dirty[f][rows] = True

    def full_sync(self, model: Model) -> None:
        """Push everything (the hand-over from batch training to the online stage)."""
        for f in model.features:
            t = model.tables[f]
            self.values[f] = t.store.weight.clone()
            self.known[f] = np.zeros(len(self.values[f]), dtype=bool)
            self.known[f][t.index.live_rows()] = True
            self.dirty[f] = np.zeros(len(self.values[f]), dtype=bool)
        self.sync_dense(model)

    def sync_sparse(self, model: Model) -> int:
        """Incremental sparse sync: only rows touched since the last push (§2.3)."""
        n = 0
        for f in model.features:
            rows = np.flatnonzero(self.dirty[f])
            if not len(rows):
                continue
            w = model.tables[f].store.weight
            if w.shape[0] > self.values[f].shape[0]:
                grown = torch.zeros_like(w)
                grown[: self.values[f].shape[0]] = self.values[f]
                self.values[f] = grown
            self.known[f] = self._fit(self.known[f], w.shape[0])
            r = torch.from_numpy(rows)
            self.values[f][r] = w[r]
            self.known[f][rows] = True
            self.dirty[f][rows] = False
            n += len(rows)
        self.syncs += 1
        self.rows_pushed += n
        return n

    def sync_dense(self, model: Model) -> None:
        self.mlp.load_state_dict(model.mlp.state_dict())

    @torch.no_grad()
    def predict(self, model: Model, keys: dict) -> np.ndarray:
        embs = []
        for f in model.features:
            rows = model.tables[f].rows(keys[f])
            known = self._fit(self.known[f], int(rows.max()) + 1 if len(rows) else 0)
            ok = rows >= 0
            ok[ok] = known[rows[ok]]
            e = torch.zeros(len(rows), model.tables[f].dim)
            r = torch.from_numpy(rows[ok])
            e[torch.from_numpy(ok)] = self.values[f][r]
            embs.append(e)
        return torch.sigmoid(self.mlp(torch.cat(embs, dim=1)).squeeze(1)).numpy()


class Schedule:
    """Fires every `interval` time units (None: never); `due(t)` is true once per crossed boundary."""

    def __init__(self, interval: float | None, start: float):
        self.interval = None if interval is None else float(interval)
        self.next = math.inf if self.interval is None else (math.floor(start / self.interval + 1e-9) + 1) * self.interval

    def due(self, t: float) -> bool:
        if t + 1e-12 < self.next:
            return False
        self.next = (math.floor(t / self.interval + 1e-9) + 1) * self.interval
        return True
