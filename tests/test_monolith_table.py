"""Monolith's collisionless table (steps.nn.cuckoo, steps.nn.embedding_table) over the whole 64-bit ID range, and its
memory accounting (live against allocated bytes). Monolith's feature IDs are 64-bit; an empty
slot holds the bit pattern -1, which is also the ID 2^64-1 (int64 -1): that ID must be an
ordinary ID, never an empty slot's row.

    python -m pytest tests/test_monolith_table.py -q -n0
"""

from __future__ import annotations

import numpy as np
import pytest

from steps.nn.cuckoo import EMPTY, CuckooHashMap, KeyIndex, as_keys
from steps.nn.embedding_table import CollisionlessTable, HashTrickTable, rows_for_bytes

U = np.uint64
# 0, the ends of the signed half (2^63-1) and of the unsigned range (2^64-1 = int64 -1), neighbours
ENDS = np.array([0, 1, 2**63 - 2, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1], dtype=U)


def test_keys_are_64_bit_patterns_and_anything_else_is_refused():
    assert as_keys(np.array([2**64 - 1, 2**63], dtype=U)).tolist() == [-1, -(2**63)]
    assert as_keys([-1, 2**64 - 1, 2**63, 0]).tolist() == [-1, -1, -(2**63), 0]       # one ID, two spellings
    assert as_keys(np.array([-1], dtype=np.int32)).tolist() == [-1]
    assert as_keys([]).dtype == np.int64 and as_keys(np.array([])).shape == (0,)
    for bad in ([2**64], [-(2**63) - 1]):
        with pytest.raises(ValueError, match="outside the 64-bit range"):
            as_keys(bad)
    for bad in (np.array([1.0]), [1.5], [True], np.array([True])):
        with pytest.raises(TypeError, match="IDs must be integers"):
            as_keys(bad)


def test_an_absent_2p64_minus_1_is_absent_not_an_empty_slots_row():
    """The bug: -1 equals an empty slot's marker, so its lookup returned the slot's stale value."""
    m = CuckooHashMap(capacity=16, seed=0)
    assert m.get(np.array([-1]))[0] == EMPTY
    m.insert_many(np.arange(1, 7), np.arange(10, 16))
    m.delete(np.array([3]))                                              # a freed slot keeps its old value
    assert m.get(np.array([-1, 3]))[0] == EMPTY and m.get(np.array([2**64 - 1], dtype=U))[0] == EMPTY
    assert m.delete(np.array([-1])) == 0 and m.size == 5


def test_extremes_are_ordinary_ids_in_both_spellings():
    m = CuckooHashMap(capacity=16, seed=1)
    m.insert_many(ENDS, np.arange(len(ENDS)))
    assert m.size == len(ENDS) and m.used == len(ENDS) - 1               # 2^64-1 sits beside the slots
    assert m.get(ENDS).tolist() == list(range(len(ENDS)))
    assert m.get(ENDS.view(np.int64)).tolist() == list(range(len(ENDS)))
    assert m.get([-1, 2**63])[0] == len(ENDS) - 1
    absent = np.array([2, 2**62, 2**63 + 2, 2**64 - 3], dtype=U)
    assert (m.get(absent) == EMPTY).all()
    keys, vals = m.items()
    assert sorted(keys.view(U).tolist()) == sorted(ENDS.tolist()) and sorted(vals.tolist()) == list(range(len(ENDS)))
    m.insert_many(np.array([-1]), np.array([99]))                        # overwrite, not a second key
    assert m.size == len(ENDS) and m.get([2**64 - 1])[0] == 99
    assert m.delete(np.array([2**64 - 1, 0], dtype=U)) == 2 and m.size == len(ENDS) - 2
    assert (m.get(np.array([-1, 0])) == EMPTY).all() and m.get([2**63 - 1])[0] == 3


def test_an_index_growing_across_the_whole_range_keeps_every_row_exact():
    rng = np.random.default_rng(0)
    idx = KeyIndex(seed=2, capacity=16, max_kicks=4)                     # tiny: many rehashes and cycles
    keys = np.unique(np.concatenate([ENDS, rng.integers(0, 2**64, 4000, dtype=U)]))
    keys = rng.permutation(keys)
    rows = {}
    for batch in np.array_split(keys, 40):
        for k, r in zip(batch.tolist(), idx.add(batch).tolist(), strict=True):
            rows[k] = r
        seen = np.array(list(rows), dtype=U)
        assert idx.lookup(seen).tolist() == list(rows.values())         # never another ID's row
    assert idx.map.rehashes > 2 and idx.map.cycles > 0 and len(set(rows.values())) == len(keys)
    gone = ENDS[[0, 3, 4, 7]]                                            # 0, 2^63-1, 2^63, 2^64-1
    idx.remove_rows(idx.lookup(gone))
    assert (idx.lookup(gone) == EMPTY).all() and len(idx) == len(keys) - 4
    assert len(idx.live_rows()) == len(keys) - 4                         # a freed row is not live
    back = idx.add(gone[::-1])                                           # freed rows reused
    assert sorted(back.tolist()) == sorted(rows[int(k)] for k in gone)
    assert idx.lookup(gone[::-1]).tolist() == back.tolist()


def test_the_collisionless_table_gives_extremes_their_own_rows_and_counts_collisions():
    t = CollisionlessTable(dim=2, seed=0, capacity=16)
    r = t.rows_for_train(np.array([5, 6], dtype=np.int64), 0.0)
    assert (t.rows([-1, 2**63]) == EMPTY).all()                          # not row 0 (the bug)
    r = t.rows_for_train(ENDS, 1.0)
    assert len(np.unique(r)) == len(ENDS) and not np.isin(r, t.rows(np.array([5, 6]))).any()
    assert t.rows(np.array([-1], dtype=np.int64))[0] == r[-1] and t.collisions() == 0
    assert t.rows_for_train([-1], 2.0)[0] == r[-1] and t.last_seen[r[-1]] == 2.0
    # collisions() measures: make 2^63 point at 0's row and both count
    t.index.map.insert_many(np.array([2**63], dtype=U), t.rows([0]))
    assert t.collisions() == 2


def test_frequency_filter_and_expiry_treat_2p64_minus_1_like_any_id():
    t = CollisionlessTable(dim=2, seed=0, min_count=2, expiry=1.0, capacity=16)
    assert t.rows_for_train(np.array([-1, 7]), 0.0).tolist() == [EMPTY, EMPTY]   # first sighting: counted
    assert (t.rows_for_train(np.array([2**64 - 1, 7], dtype=U), 0.5) >= 0).all()
    assert t.expire(2.0) == 2 and (t.rows(np.array([-1, 7])) == EMPTY).all() and len(t) == 0


def test_hash_trick_buckets_full_range_ids():
    t = HashTrickTable(dim=2, seed=0, rows=64)
    b = t.rows_for_train(ENDS, 0.0)
    assert ((b >= 0) & (b < 64)).all() and t.n_seen() == len(ENDS)
    assert t.rows([-1])[0] == b[-1]


def _arrays(table: CollisionlessTable) -> int:
    """Bytes of every numpy array and tensor the table and its indexes hold (+ free lists)."""
    parts = [table.store.weight, table.store.accum, table.last_seen]
    for idx in (table.index, table.pending):
        if idx is not None:
            parts += [idx.map.keys, idx.map.vals, idx.map.side, idx.row_key, idx.row_live]
    if table.pending is not None:
        parts += [table.pending_count, table.pending_seen]
    n = sum(int(p.nbytes) for p in parts)
    return n + 8 * (len(table.index.free) + (len(table.pending.free) if table.pending is not None else 0))


@pytest.mark.parametrize("min_count", [1, 2])
def test_allocated_bytes_count_every_array_at_capacity(min_count):
    t = CollisionlessTable(dim=16, seed=0, min_count=min_count, capacity=1024)
    ids = np.random.default_rng(0).integers(0, 2**64, 3000, dtype=U)
    t.rows_for_train(np.concatenate([ids, ids[:1700]]), 0.0)              # 1700 admitted at f=2
    assert t.allocated_bytes() == _arrays(t)
    assert t.allocated_bytes() > t.live_bytes()                           # doubling, last-seen, row -> key
    assert t.store.weight.shape[0] >= len(t) and t.store.weight.shape[0] & (t.store.weight.shape[0] - 1) == 0


def test_a_hash_table_of_equal_allocated_memory_allocates_no_more():
    t = CollisionlessTable(dim=16, seed=0, capacity=16)
    t.rows_for_train(np.arange(5000), 0.0)
    h = HashTrickTable(dim=16, seed=0, rows=rows_for_bytes(t.allocated_bytes(), 16))
    assert t.allocated_bytes() - 2 * 4 * 16 < h.allocated_bytes() <= t.allocated_bytes()
    assert h.allocated_bytes() == h.live_bytes()                          # a dense table is its arrays
    huge = HashTrickTable(dim=16, seed=0, rows=1 << 62)                   # virtual: what it really holds
    huge.rows_for_train(np.arange(100), 0.0)
    assert huge.allocated_bytes() < 10 * 2**20 < huge.live_bytes()
