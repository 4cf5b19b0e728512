"""A collisionless key -> row index (cuckoo hashing); the sparse embedding tables built on it are
in steps.nn.embedding_table.

Monolith (arXiv 2209.07663, §2.1) keeps embeddings in a key -> embedding HashTable backed by a
Cuckoo hashmap: two tables T0, T1 with hash functions h0, h1; an insert tries T0[h0(k)], and
when that slot is taken it evicts the occupant to its other table, and so on; a cycle (an
eviction chain longer than `max_kicks`) grows and rehashes. Every distinct key gets its own
slot, compared by equality, so distinct IDs never share an embedding row.

    idx = CuckooHashMap(seed=0)
    idx.insert_many(np.array([7, 11]), np.array([0, 1]))
    idx.get(np.array([11, 5]))          # -> [1, -1]

Keys are 64-bit IDs (Monolith's feature IDs are 64-bit): int64 or uint64 arrays, the same bits
being the same ID (int64 -1 is 2^64-1), or Python ints in [-2^63, 2^64); see `as_keys`. A slot
is empty when it holds the bit pattern EMPTY (-1), so the one ID with that pattern, 2^64-1, is
kept beside the tables in a side entry (fastutil's and HPPC's open hash maps keep their marker
key, 0, the same way: `containsNullKey`, `hasEmptyKey`) and never enters a slot. Every other
key takes the same slots, evictions and rehashes as before the side entry existed.

`KeyIndex` maps keys to dense row numbers (with a free list, so expired rows are reused).
"""

from __future__ import annotations

import math
import operator

import numpy as np
from numba import njit

EMPTY = -1                  # an empty slot's key, and what a lookup returns for an absent key
_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def as_keys(keys) -> np.ndarray:
    """IDs as an int64 array of their 64-bit patterns. int64 and uint64 arrays are taken bit for
    bit (int64 -1 and uint64 2^64-1 are one ID), narrower integer arrays sign- or zero-extended;
    Python ints must lie in [-2^63, 2^64) (negative ones are the upper half, as in int64). Float
    and bool IDs are refused: a float64 cannot hold every 64-bit ID (2^53 + 1 rounds)."""
    if isinstance(keys, (np.ndarray, np.generic)):
        a = np.asarray(keys)
        if a.dtype == np.int64:
            return a
        if a.dtype == np.uint64:
            return a.view(np.int64)
        if a.dtype.kind in "iu":
            return a.astype(np.int64)
        if a.size == 0:
            return np.zeros(a.shape, np.int64)
        raise TypeError(f"IDs must be integers (int64 or uint64), got {a.dtype}")
    obj = np.array(keys, dtype=object)
    flat = []
    for k in obj.ravel().tolist():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"IDs must be integers, got {k!r} ({type(k).__name__})")
        k = operator.index(k)
        if not -(1 << 63) <= k <= _M64:
            raise ValueError(f"ID {k} is outside the 64-bit range [-2^63, 2^64)")
        flat.append(k & _M64)
    return np.array(flat, dtype=np.uint64).view(np.int64).reshape(obj.shape)


def _mix_scalar(key: int, salt: int) -> int:
    """splitmix64's finaliser of key + salt·φ (a well-mixed 64-bit hash), on Python ints."""
    z = (key + salt * _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def mix64(keys: np.ndarray, salt: int) -> np.ndarray:
    """`_mix_scalar` vectorised (uint64 arithmetic wraps modulo 2^64, as intended)."""
    z = keys.astype(np.uint64) + np.uint64((salt * _GOLDEN) & _M64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# Lookups and inserts compiled with numba (the Python insert loop and the vectorised lookup
# were 4× slower than a dict: steps/monolith/bench_official.py). Same arithmetic as `_mix_scalar`, same eviction order as
# the cuckoo insert described in CuckooHashMap, so the tables it builds are bit-identical.
_DONE, _GROW, _CYCLE = 0, 1, 2


@njit(cache=True, nogil=True)
def _slot(key, salt_term, mask):
    z = np.uint64(key) + salt_term
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.int64((z ^ (z >> np.uint64(31))) & mask)


@njit(cache=True, nogil=True)
def _place(tkeys, tvals, terms, mask, key, val, max_kicks, stats):
    """One cuckoo insert: T0[h0(k)], evicting the occupant to its other table, and so on.
    Returns (-1, 0) when every key has a slot, else the (key, value) left homeless after
    max_kicks evictions. stats[0] += evictions and stats[1] = max(stats[1], evictions) on success."""
    t = 0
    for kick in range(max_kicks + 1):
        s = _slot(key, terms[t], mask)
        old_k, old_v = tkeys[t, s], tvals[t, s]
        tkeys[t, s] = key
        tvals[t, s] = val
        if old_k == EMPTY:
            stats[0] += kick
            stats[1] = max(stats[1], kick)
            return -1, 0
        key, val, t = old_k, old_v, 1 - t
    return key, val


@njit(cache=True, nogil=True)
def _insert_run(tkeys, tvals, terms, mask, keys, vals, start, size, limit, max_kicks, stats, side):
    """Insert keys[start:] in order (an existing key's value is overwritten) until one needs the
    table to grow first (size + 1 > limit: _GROW, at that key) or leaves a key homeless (_CYCLE,
    after that key, with the homeless pair). `size` counts the keys in slots; the key EMPTY goes
    to side = [present, value] instead. Returns (status, next index, size, key, value)."""
    for i in range(start, len(keys)):
        key = keys[i]
        if key == EMPTY:
            side[0] = 1
            side[1] = vals[i]
            continue
        s0 = _slot(key, terms[0], mask)
        if tkeys[0, s0] == key:
            tvals[0, s0] = vals[i]
            continue
        s1 = _slot(key, terms[1], mask)
        if tkeys[1, s1] == key:
            tvals[1, s1] = vals[i]
            continue
        if size + 1 > limit:
            return _GROW, i, size, -1, 0
        hk, hv = _place(tkeys, tvals, terms, mask, key, vals[i], max_kicks, stats)
        size += 1
        if hk != EMPTY:
            return _CYCLE, i + 1, size, hk, hv
    return _DONE, len(keys), size, -1, 0


@njit(cache=True, nogil=True)
def _get(tkeys, tvals, terms, mask, keys, out, side):
    """out[i] = the value of keys[i] (T0 first, then T1; the key EMPTY from `side`), EMPTY where
    absent. An empty slot holds EMPTY, so the key EMPTY must never be compared with slots."""
    for i in range(len(keys)):
        key = keys[i]
        if key == EMPTY:
            out[i] = side[1] if side[0] else EMPTY
            continue
        s = _slot(key, terms[0], mask)
        if tkeys[0, s] == key:
            out[i] = tvals[0, s]
            continue
        s = _slot(key, terms[1], mask)
        out[i] = tvals[1, s] if tkeys[1, s] == key else EMPTY


@njit(cache=True, nogil=True)
def _place_all(tkeys, tvals, terms, mask, keys, vals, max_kicks, stats):
    """Place every entry into empty tables, in order; False at the first homeless key."""
    for i in range(len(keys)):
        hk, _ = _place(tkeys, tvals, terms, mask, keys[i], vals[i], max_kicks, stats)
        if hk != EMPTY:
            return False
    return True


class CuckooHashMap:
    """64-bit key (`as_keys`) -> int64 value (>= 0: a lookup returns EMPTY for an absent key); two
    tables of `cap` slots each, load <= max_load, and a side entry for the key EMPTY."""

    def __init__(self, capacity: int = 1024, max_load: float = 0.5, max_kicks: int = 500, seed: int = 0):
        self.cap = 1 << max(4, math.ceil(math.log2(max(capacity, 16))))
        self.max_load, self.max_kicks = float(max_load), int(max_kicks)
        self.seed = int(seed)
        self.used = 0          # keys in slots (the load); `size` adds the side entry
        self.side = np.zeros(2, dtype=np.int64)   # [present, value] of the key EMPTY (ID 2^64-1)
        self.rehashes = 0      # grow-and-rehash events (load above max_load, or a cycle)
        self.cycles = 0        # of which: eviction chains longer than max_kicks
        self.longest_chain = 0  # most evictions one insert needed
        self.kicks = 0         # evictions over all inserts
        self._alloc(self.cap)

    def _alloc(self, cap: int) -> None:
        self.cap = cap
        self.keys = np.full((2, cap), EMPTY, dtype=np.int64)
        self.vals = np.zeros((2, cap), dtype=np.int64)
        gen = np.random.default_rng([self.seed, self.rehashes])  # fresh hash functions per rehash
        self.salts = [int(s) for s in gen.integers(1, 2**62, size=2)]
        self.terms = np.array([(s * _GOLDEN) & _M64 for s in self.salts], dtype=np.uint64)  # salt·φ mod 2^64

    @property
    def size(self) -> int:
        """Keys held: in slots, plus the side entry."""
        return self.used + int(self.side[0])

    def load_factor(self) -> float:
        return self.used / (2 * self.cap)

    def nbytes(self) -> int:
        """Bytes allocated: both tables at capacity (keys and values) and the side entry."""
        return int(self.keys.nbytes + self.vals.nbytes + self.side.nbytes)

    def slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = np.uint64(self.cap - 1)
        keys = as_keys(keys)
        return ((mix64(keys, self.salts[0]) & mask).astype(np.int64),
                (mix64(keys, self.salts[1]) & mask).astype(np.int64))

    def get(self, keys: np.ndarray) -> np.ndarray:
        """Values of `keys`, EMPTY (-1) where absent. Exact: keys are compared, not hashes."""
        keys = as_keys(keys)
        out = np.empty(keys.size, dtype=np.int64)
        _get(self.keys, self.vals, self.terms, np.uint64(self.cap - 1), np.ascontiguousarray(keys).ravel(), out,
             self.side)
        return out.reshape(keys.shape)

    def insert(self, key: int, val: int) -> None:
        """Insert or overwrite one key."""
        self.insert_many(np.array([key]), np.array([val]))

    def insert_many(self, keys: np.ndarray, vals: np.ndarray) -> None:
        """Insert or overwrite keys in order, as one `insert` after another would: growth (double
        the slots, rehash with new hash functions) before a new key that would lift the load
        above max_load; on a cycle (an eviction chain longer than max_kicks) grow and rehash,
        placing the homeless key then."""
        keys = np.ascontiguousarray(as_keys(keys)).ravel()
        vals = np.ascontiguousarray(vals, dtype=np.int64).ravel()
        if len(keys) != len(vals):
            raise ValueError(f"{len(keys)} keys but {len(vals)} values")
        i = 0
        stats = np.array([self.kicks, self.longest_chain], dtype=np.int64)
        while i < len(keys):
            status, i, self.used, hk, hv = _insert_run(
                self.keys, self.vals, self.terms, np.uint64(self.cap - 1), keys, vals, i, self.used,
                self.max_load * 2 * self.cap, self.max_kicks, stats, self.side)
            if status == _GROW:
                self._rebuild(self.cap * 2, [], stats)
            elif status == _CYCLE:
                self.cycles += 1
                self._rebuild(self.cap * 2, [(int(hk), int(hv))], stats)
        self.kicks, self.longest_chain = int(stats[0]), int(stats[1])

    def _rebuild(self, cap: int, extra: list[tuple[int, int]], stats: np.ndarray) -> None:
        """Rehash every live entry (table order, then `extra`) into tables of `cap` slots with
        new hash functions, doubling again until all fit."""
        live = self.keys != EMPTY
        keys = np.concatenate([self.keys[live], np.array([k for k, _ in extra], dtype=np.int64)])
        vals = np.concatenate([self.vals[live], np.array([v for _, v in extra], dtype=np.int64)])
        while True:
            self.rehashes += 1
            self._alloc(cap)
            if _place_all(self.keys, self.vals, self.terms, np.uint64(self.cap - 1), keys, vals, self.max_kicks, stats):
                return
            cap *= 2

    def delete(self, keys: np.ndarray) -> int:
        """Remove keys (absent ones are ignored); returns how many were removed."""
        keys = as_keys(keys).ravel()
        marker = keys == EMPTY
        removed = 0
        if marker.any():
            removed, self.side[0] = int(self.side[0]), 0
            keys = keys[~marker]
        s0, s1 = self.slots(keys)
        for t, s in ((0, s0), (1, s1)):
            hit = self.keys[t, s] == keys
            self.keys[t, s[hit]] = EMPTY
            self.used -= int(hit.sum())
            removed += int(hit.sum())
        return removed

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, values) of every key held: the slots in table order, then the side entry."""
        live = self.keys != EMPTY
        keys, vals = self.keys[live], self.vals[live]
        if self.side[0]:
            keys, vals = np.append(keys, EMPTY), np.append(vals, self.side[1])
        return keys, vals

    def stats(self) -> dict:
        return {"size": self.size, "capacity": 2 * self.cap, "load_factor": self.load_factor(),
                "rehashes": self.rehashes, "cycles": self.cycles, "longest_chain": self.longest_chain,
                "mean_kicks": self.kicks / max(1, self.used)}


class KeyIndex:
    """Distinct keys -> distinct dense rows 0..n-1 through a CuckooHashMap; freed rows are reused.
    `row_key[r]` is row r's key and `row_live[r]` whether r is held (a key cannot mark a free row:
    every 64-bit pattern is an ID)."""

    def __init__(self, seed: int = 0, capacity: int = 1024, max_load: float = 0.5, max_kicks: int = 500):
        self.map = CuckooHashMap(capacity, max_load, max_kicks, seed)
        self.row_key = np.zeros(16, dtype=np.int64)
        self.row_live = np.zeros(16, dtype=bool)
        self.n_alloc = 0            # rows ever handed out (the high-water mark of the row space)
        self.free: list[int] = []

    def __len__(self) -> int:
        return self.map.size

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        return self.map.get(keys)

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Rows for new distinct keys (the caller guarantees they are absent and unique): freed
        rows first (last freed first), then fresh ones."""
        keys = as_keys(keys).ravel()
        reused = [self.free.pop() for _ in range(min(len(keys), len(self.free)))]
        fresh = np.arange(self.n_alloc, self.n_alloc + len(keys) - len(reused), dtype=np.int64)
        rows = np.concatenate([np.array(reused, dtype=np.int64), fresh])
        self.n_alloc += len(fresh)
        while len(self.row_key) < self.n_alloc:
            n = len(self.row_key)
            self.row_key = np.concatenate([self.row_key, np.zeros(n, dtype=np.int64)])
            self.row_live = np.concatenate([self.row_live, np.zeros(n, dtype=bool)])
        self.map.insert_many(keys, rows)
        self.row_key[rows] = keys
        self.row_live[rows] = True
        return rows

    def remove_rows(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.map.delete(self.row_key[rows])
        self.row_live[rows] = False
        self.free.extend(sorted(rows.tolist(), reverse=True))

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.row_live[: self.n_alloc])

    def nbytes(self) -> int:
        """Bytes allocated: the cuckoo tables at capacity, the row -> key and row-held arrays at
        their (doubled) length, the free list at 8 bytes a row (as an int64 stack)."""
        return int(self.map.nbytes() + self.row_key.nbytes + self.row_live.nbytes + 8 * len(self.free))
