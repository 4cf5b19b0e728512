"""Sparse embedding tables for a recommender (Monolith, arXiv 2209.07663, §2.1): the collisionless
table (a cuckoo KeyIndex, steps.nn.cuckoo: one row per distinct admitted ID, with frequency
filtering and expiry) and the baseline hash-trick table (row = hash(key) mod M, so distinct keys
can share a row). Both expose the same interface to a model (steps.monolith.model) and report
their memory two ways: live rows (`live_bytes`) and every array at its capacity (`allocated_bytes`).
"""

from __future__ import annotations

import numpy as np
import torch

from steps.nn.cuckoo import KeyIndex, as_keys, mix64


class _Storage:
    """Embedding rows and their Adagrad accumulators, grown by doubling (float32)."""

    def __init__(self, dim: int, rows: int):
        self.dim = dim
        self.weight = torch.zeros(max(rows, 1), dim)
        self.accum = torch.zeros(max(rows, 1), dim)

    def ensure(self, n: int) -> None:
        if n > self.weight.shape[0]:
            size = self.weight.shape[0]
            while size < n:
                size *= 2
            for name in ("weight", "accum"):
                old = getattr(self, name)
                new = torch.zeros(size, self.dim)
                new[: old.shape[0]] = old
                setattr(self, name, new)

    def nbytes(self) -> int:
        """Bytes allocated: both arrays at their (doubled) row capacity."""
        return sum(t.element_size() * t.nelement() for t in (self.weight, self.accum))

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of `rows`; a row of -1 (no embedding: filtered or unknown) is zeros."""
        ok = rows >= 0
        out = self.weight.index_select(0, torch.from_numpy(np.where(ok, rows, 0)))
        if not ok.all():
            out[torch.from_numpy(~ok)] = 0.0
        return out

    def adagrad(self, rows: np.ndarray, grad: torch.Tensor, lr: float, eps: float = 1e-10) -> np.ndarray:
        """Sparse Adagrad on the rows a batch touched (duplicates summed); returns those rows."""
        ok = rows >= 0
        if not ok.all():
            rows, grad = rows[ok], grad[torch.from_numpy(ok)]
        if not len(rows):
            return rows
        uniq, inv = np.unique(rows, return_inverse=True)
        u = torch.from_numpy(uniq)
        g = torch.zeros(len(uniq), self.dim).index_add_(0, torch.from_numpy(inv.ravel()), grad)
        acc = self.accum.index_select(0, u).addcmul_(g, g)
        self.accum.index_copy_(0, u, acc)
        self.weight.index_add_(0, u, g.div_(acc.sqrt_().add_(eps)).mul_(-lr))
        return uniq


class CollisionlessTable:
    """Monolith's embedding table: a cuckoo KeyIndex (one row per distinct admitted ID) with
    frequency filtering (an ID gets a row once seen `min_count` times; §2.1) and expirable
    embeddings (rows idle for more than `expiry` time units are evicted). Until admitted an ID
    has no row: its embedding is zeros and receives no update."""

    kind = "cuckoo"

    def __init__(self, dim: int, seed: int, min_count: int = 1, expiry: float | None = None,
                 init_std: float = 0.05, capacity: int = 1024, max_load: float = 0.5, max_kicks: int = 500):
        self.dim, self.min_count = int(dim), int(min_count)
        self.expiry = None if expiry is None else float(expiry)
        self.init_std = float(init_std)
        self.index = KeyIndex(seed, capacity, max_load, max_kicks)
        self.store = _Storage(dim, capacity)
        self.last_seen = np.zeros(16)
        self.rng = np.random.default_rng([seed, 1])
        # The frequency filter's counts of IDs not yet admitted (exact, itself collisionless).
        self.pending = KeyIndex(seed + 7919, capacity, max_load, max_kicks) if self.min_count > 1 else None
        self.pending_count = np.zeros(16, dtype=np.int64)
        self.pending_seen = np.zeros(16)
        self.peak_rows = 0

    def __len__(self) -> int:
        return len(self.index)

    def _grow_meta(self) -> None:
        n = self.index.n_alloc
        if n > len(self.last_seen):
            self.last_seen = np.concatenate([self.last_seen, np.zeros(max(n, 2 * len(self.last_seen)) - len(self.last_seen))])
        if self.pending is not None and self.pending.n_alloc > len(self.pending_count):
            m = max(self.pending.n_alloc, 2 * len(self.pending_count))
            self.pending_count = np.concatenate([self.pending_count, np.zeros(m - len(self.pending_count), dtype=np.int64)])
            self.pending_seen = np.concatenate([self.pending_seen, np.zeros(m - len(self.pending_seen))])

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Lookup only (serving): -1 for IDs without a row."""
        return self.index.lookup(keys)

    def rows_for_train(self, keys: np.ndarray, t: float) -> np.ndarray:
        """Rows of a training batch: counts unseen IDs, admits those reaching min_count (new rows,
        randomly initialised), stamps last-seen times; -1 for IDs still filtered."""
        keys = as_keys(keys)
        rows = self.index.lookup(keys)
        missing = rows < 0
        if missing.any():
            new, counts = np.unique(keys[missing], return_counts=True)
            if self.pending is not None:
                prow = self.pending.lookup(new)
                fresh = prow < 0
                if fresh.any():
                    prow[fresh] = self.pending.add(new[fresh])
                    self._grow_meta()
                    self.pending_count[prow[fresh]] = 0
                self.pending_count[prow] += counts
                self.pending_seen[prow] = t
                admit = self.pending_count[prow] >= self.min_count
                if admit.any():
                    self.pending.remove_rows(prow[admit])
                new = new[admit]
            if len(new):
                r = self.index.add(new)
                self._grow_meta()
                self.store.ensure(self.index.n_alloc)
                init = self.rng.normal(0.0, self.init_std, size=(len(r), self.dim)).astype(np.float32)
                self.store.weight[torch.from_numpy(r)] = torch.from_numpy(init)
                self.store.accum[torch.from_numpy(r)] = 0.0
                rows = self.index.lookup(keys)
        hit = rows >= 0
        self.last_seen[rows[hit]] = t
        self.peak_rows = max(self.peak_rows, len(self.index))
        return rows

    def expire(self, now: float) -> int:
        """Evict rows (and pending counts) idle for longer than `expiry`; returns rows evicted."""
        if self.expiry is None:
            return 0
        live = self.index.live_rows()
        old = live[self.last_seen[live] < now - self.expiry]
        if len(old):
            self.index.remove_rows(old)
        if self.pending is not None:
            plive = self.pending.live_rows()
            pold = plive[self.pending_seen[plive] < now - self.expiry]
            if len(pold):
                self.pending.remove_rows(pold)
        return len(old)

    def live_bytes(self) -> int:
        """Memory of the live state: per row the embedding and its Adagrad accumulator (float32)
        and the last-seen time (float32 would do; counted as 4 bytes); the cuckoo slots (key +
        row id, 16 bytes each, at load <= 0.5); the filter's pending IDs likewise (count 4 bytes).
        Leaves out row capacity grown by doubling and the row-side arrays: `allocated_bytes`."""
        rows = len(self.index)
        b = rows * (2 * 4 * self.dim + 4) + self.index.map.cap * 2 * 16
        if self.pending is not None:
            b += len(self.pending) * (4 + 4) + self.pending.map.cap * 2 * 16
        return int(b)

    def allocated_bytes(self) -> int:
        """Memory allocated: every array the table holds, at its capacity (embeddings and Adagrad
        state at their doubled row capacity, last-seen times as stored, float64; the key index:
        cuckoo tables, row -> key, row-held flags, free list; the filter's index, counts, times)."""
        b = self.store.nbytes() + self.last_seen.nbytes + self.index.nbytes()
        if self.pending is not None:
            b += self.pending.nbytes() + self.pending_count.nbytes + self.pending_seen.nbytes
        return int(b)

    def collisions(self) -> int:
        """Distinct live keys whose row is not theirs alone (0 by construction; measured): the row
        is shared with another key, or the row -> key array names another key or a free row, or a
        lookup of the key gives another row."""
        keys, rows = self.index.map.items()
        if not len(keys):
            return 0
        _, inv, cnt = np.unique(rows, return_inverse=True, return_counts=True)
        idx = self.index
        bad = (cnt[inv.ravel()] > 1) | (idx.row_key[rows] != keys) | ~idx.row_live[rows] | (idx.lookup(keys) != rows)
        return int(bad.sum())


class HashTrickTable:
    """The baseline: row = hash(ID) mod M (a fixed table; distinct IDs may share a row). For
    M above `dense_limit` the table is virtual: only touched buckets are materialised (through
    a KeyIndex keyed by bucket), so a nominal M >> #IDs² exists without its memory."""

    kind = "hash"

    def __init__(self, dim: int, seed: int, rows: int, init_std: float = 0.05, dense_limit: int = 1 << 24):
        self.dim, self.m = int(dim), int(rows)
        self.salt = int(np.random.default_rng([seed, 2]).integers(1, 2**62))
        self.init_std = float(init_std)
        self.rng = np.random.default_rng([seed, 1])
        self.virtual = self.m > dense_limit
        self.seen_keys: set[int] = set()
        self.touched: set[int] = set()
        if self.virtual:
            self.index = KeyIndex(seed + 104729)
            self.store = _Storage(dim, 1024)
        else:
            self.store = _Storage(dim, self.m)
            init = self.rng.normal(0.0, self.init_std, size=(self.m, dim)).astype(np.float32)
            self.store.weight[:] = torch.from_numpy(init)
        self.peak_rows = 0

    def __len__(self) -> int:
        return len(self.index) if self.virtual else self.m

    def bucket(self, keys: np.ndarray) -> np.ndarray:
        return (mix64(as_keys(keys), self.salt) % np.uint64(self.m)).astype(np.int64)

    def rows(self, keys: np.ndarray) -> np.ndarray:
        b = self.bucket(keys)
        return self.index.lookup(b) if self.virtual else b

    def rows_for_train(self, keys: np.ndarray, t: float) -> np.ndarray:
        keys = as_keys(keys)
        self.seen_keys.update(np.unique(keys).tolist())
        b = self.bucket(keys)
        if not self.virtual:
            self.peak_rows = self.m
            return b
        rows = self.index.lookup(b)
        if (rows < 0).any():
            new = np.unique(b[rows < 0])
            r = self.index.add(new)
            self.store.ensure(self.index.n_alloc)
            init = self.rng.normal(0.0, self.init_std, size=(len(r), self.dim)).astype(np.float32)
            self.store.weight[torch.from_numpy(r)] = torch.from_numpy(init)
            rows = self.index.lookup(b)
        self.peak_rows = max(self.peak_rows, len(self.index))
        return rows

    def expire(self, now: float) -> int:
        return 0

    def live_bytes(self) -> int:
        """Nominal memory: M rows of embedding + Adagrad accumulator (float32)."""
        return int(self.m * 2 * 4 * self.dim)

    def allocated_bytes(self) -> int:
        """Memory allocated: the M-row arrays (dense; = live_bytes), or for a virtual table the
        touched buckets' rows at their doubled capacity and the bucket index. `seen_keys` counts
        collisions for the report and is not part of the table."""
        return int(self.store.nbytes() + (self.index.nbytes() if self.virtual else 0))

    def collisions(self) -> int:
        """Distinct IDs seen in training that share their row with another seen ID."""
        if not self.seen_keys:
            return 0
        b = self.bucket(np.fromiter(self.seen_keys, dtype=np.int64))
        _, inv, cnt = np.unique(b, return_inverse=True, return_counts=True)
        return int((cnt[inv] > 1).sum())

    def n_seen(self) -> int:
        return len(self.seen_keys)


def rows_for_bytes(nbytes: int, dim: int) -> int:
    """Rows of a hash-trick table that use `nbytes` (embedding + accumulator, float32: a dense
    table's allocation is these arrays, so allocated and live bytes are the same)."""
    return max(1, int(nbytes // (2 * 4 * dim)))


def collision_rate(keys: np.ndarray, rows: int, salt: int) -> float:
    """Share of the distinct `keys` that share their row with another key when hashed into
    `rows` rows (hash trick: row = mix64(key, salt) mod rows)."""
    keys = np.unique(as_keys(keys))
    if not len(keys):
        return 0.0
    b = mix64(keys, salt) % np.uint64(rows)
    _, inv, cnt = np.unique(b, return_inverse=True, return_counts=True)
    return float((cnt[inv.ravel()] > 1).mean())
