"""Monolith's mechanism: the collisionless cuckoo table, frequency filter and expiry, the
hash-trick baseline, parameter sync, progressive validation, the stream generator and the
MovieLens loaders. In-process and small (the spec's pitfalls are the targets)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from steps.core.errors import ArtifactError
from steps.data import click_stream, movielens
from steps.data.click_stream import random_ids
from steps.monolith import online
from steps.monolith.common import Stream
from steps.monolith.model import Model, Schedule, Serving
from steps.nn.cuckoo import CuckooHashMap, KeyIndex, mix64
from steps.nn.embedding_table import CollisionlessTable, HashTrickTable, collision_rate

MODEL = OmegaConf.create({"dim": 4, "hidden": [8], "sparse_lr": 0.05, "dense_lr": 0.001, "batch": 64, "init_std": 0.05,
                          "cuckoo": {"initial_capacity": 16, "max_load": 0.5, "max_kicks": 500}})


def test_1e5_random_ids_no_collisions_and_exact_lookups():
    keys = random_ids(np.random.default_rng(0), 100_000, bits=62)
    m = CuckooHashMap(capacity=1024, seed=3)
    m.insert_many(keys, np.arange(len(keys)))
    assert m.size == len(keys)
    assert np.array_equal(m.get(keys), np.arange(len(keys)))          # exact, nothing lost
    assert m.load_factor() <= 0.5 and m.rehashes > 0                     # grew at load 0.5
    absent = random_ids(np.random.default_rng(1), 10_000, bits=62)
    assert (m.get(absent[~np.isin(absent, keys)]) == -1).all()
    table = CollisionlessTable(dim=2, seed=0)
    rows = table.rows_for_train(keys[:20_000], 0.0)
    assert len(np.unique(rows)) == 20_000 and table.collisions() == 0


def test_keys_sharing_a_hash_slot_still_get_distinct_rows():
    """The pitfall: `hash(id) % M` is a hash trick. Keys with equal h0 slots must not share."""
    m = CuckooHashMap(capacity=16, seed=0)
    cand = np.arange(0, 5000, dtype=np.int64)
    s0, _ = m.slots(cand)
    same = cand[s0 == s0[0]][:6]                                        # six keys, one T0 slot
    assert len(same) == 6
    idx = KeyIndex(seed=0, capacity=16)
    rows = idx.add(same)
    assert len(set(rows.tolist())) == 6 and np.array_equal(idx.lookup(same), rows)


def test_eviction_cycles_grow_and_keep_every_key():
    m = CuckooHashMap(capacity=16, max_kicks=2, seed=5)                  # tiny chains: cycles happen
    keys = random_ids(np.random.default_rng(2), 3000, bits=62)
    m.insert_many(keys, keys * 2)
    assert m.cycles > 0 and np.array_equal(m.get(keys), keys * 2)


def test_delete_frees_rows_for_reuse():
    idx = KeyIndex(seed=1)
    rows = idx.add(np.array([10, 20, 30]))
    idx.remove_rows(rows[:1])
    assert idx.lookup(np.array([10]))[0] == -1 and len(idx) == 2
    assert idx.add(np.array([40]))[0] == rows[0]                        # the freed row is reused
    assert np.array_equal(idx.lookup(np.array([20, 30, 40])), [rows[1], rows[2], rows[0]])


def test_hash_trick_collides_and_counts_collisions():
    t = HashTrickTable(dim=2, seed=0, rows=16)
    keys = np.arange(100, dtype=np.int64)
    rows = t.rows_for_train(keys, 0.0)
    assert rows.max() < 16 and t.collisions() == 100                    # pigeonhole: all share
    assert collision_rate(keys, 1 << 40, 7) == 0.0 and collision_rate(keys, 16, 7) == 1.0
    huge = HashTrickTable(dim=2, seed=0, rows=1 << 62)                  # virtual: no M-row memory
    assert huge.virtual and huge.collisions() == 0 and len(huge) == 0
    huge.rows_for_train(keys, 0.0)
    assert len(huge) == 100 and huge.collisions() == 0


def test_mix64_vectorised_matches_scalar():
    from steps.nn.cuckoo import _mix_scalar

    keys = np.array([0, 1, 2**40 + 3, 2**62 - 1, 2**63 - 1, -(2**63), -2, -1], dtype=np.int64)   # negative: >= 2^63
    assert [int(v) for v in mix64(keys, 99)] == [_mix_scalar(int(k), 99) for k in keys]
    assert [int(v) for v in mix64(keys, 99)] == [_mix_scalar(int(k) % 2**64, 99) for k in keys]


def plain_cuckoo(keys, vals, cap: int, max_kicks: int, seed: int):
    """The cuckoo insert written out in Python (T0 first, evict to the other table, grow at load
    0.5 or on a cycle with fresh salts): the reference the compiled insert path must equal."""
    from steps.nn.cuckoo import _mix_scalar

    st = {"cap": cap, "rehashes": 0, "size": 0}

    def alloc(c):
        st["cap"], st["keys"], st["vals"] = c, np.full((2, c), -1, np.int64), np.zeros((2, c), np.int64)
        st["salts"] = [int(s) for s in np.random.default_rng([seed, st["rehashes"]]).integers(1, 2**62, size=2)]

    def place(k, v):
        t = 0
        for _ in range(max_kicks + 1):
            s = _mix_scalar(k, st["salts"][t]) & (st["cap"] - 1)
            old = (int(st["keys"][t, s]), int(st["vals"][t, s]))
            st["keys"][t, s], st["vals"][t, s] = k, v
            if old[0] == -1:
                return None
            (k, v), t = old, 1 - t
        return k, v

    def rebuild(c, extra):
        live = st["keys"] != -1
        entries = list(zip(st["keys"][live].tolist(), st["vals"][live].tolist(), strict=True)) + extra
        while True:
            st["rehashes"] += 1
            alloc(c)
            if all(place(k, v) is None for k, v in entries):
                return
            c *= 2

    alloc(cap)
    for k, v in zip(keys.tolist(), vals.tolist(), strict=True):
        hit = [(t, s) for t in (0, 1) for s in [_mix_scalar(k, st["salts"][t]) & (st["cap"] - 1)] if st["keys"][t, s] == k]
        if hit:
            st["vals"][hit[0]] = v
            continue
        if st["size"] + 1 > 0.5 * 2 * st["cap"]:
            rebuild(st["cap"] * 2, [])
        homeless = place(k, v)
        if homeless is not None:
            rebuild(st["cap"] * 2, [homeless])
        st["size"] += 1
    return st


@pytest.mark.parametrize("max_kicks,bits", [(500, 62), (2, 62), (0, 62), (500, 64), (2, 64)])
def test_compiled_insert_builds_the_same_tables_as_the_plain_algorithm(max_kicks, bits):
    """bits 64: keys over the whole uint64 range (as int64 bit patterns) but 2^64-1, which the
    compiled map keeps beside its tables (tests/test_monolith_table.py)."""
    rng = np.random.default_rng(max_kicks)
    keys = rng.integers(0, 2**62, 3000) if bits == 62 else rng.integers(0, 2**64, 3000, dtype=np.uint64).view(np.int64)
    keys[keys == -1] = 5
    keys[2000:2050] = keys[:50]  # repeated keys overwrite their value
    m = CuckooHashMap(capacity=16, max_kicks=max_kicks, seed=5)
    m.insert_many(keys, np.arange(len(keys)))
    ref = plain_cuckoo(keys, np.arange(len(keys)), 16, max_kicks, 5)
    assert np.array_equal(m.keys, ref["keys"]) and np.array_equal(m.vals, ref["vals"])
    assert (m.cap, m.rehashes, m.size, m.salts) == (ref["cap"], ref["rehashes"], ref["size"], ref["salts"])
    assert np.array_equal(m.get(keys[2050:]), np.arange(2050, 3000))


def test_frequency_filter_admits_after_min_count_with_zero_embedding_before():
    t = CollisionlessTable(dim=3, seed=0, min_count=3)
    k = np.array([7], dtype=np.int64)
    assert t.rows_for_train(k, 0.0)[0] == -1 and t.rows_for_train(k, 0.1)[0] == -1
    assert torch.equal(t.store.gather(np.array([-1])), torch.zeros(1, 3))
    assert t.rows_for_train(k, 0.2)[0] >= 0 and len(t) == 1            # third sighting: a row
    assert len(t.pending) == 0                                           # its count was dropped
    both = np.array([8, 8, 8], dtype=np.int64)                           # 3 in one batch: admitted
    assert (t.rows_for_train(both, 0.3) >= 0).all()


def test_expiry_evicts_idle_rows_and_pending_counts():
    t = CollisionlessTable(dim=2, seed=0, min_count=2, expiry=1.0)
    t.rows_for_train(np.array([1, 1, 2, 2], dtype=np.int64), 0.0)        # two rows
    t.rows_for_train(np.array([3], dtype=np.int64), 0.0)                 # pending
    t.rows_for_train(np.array([2, 2], dtype=np.int64), 1.5)
    before, alloc = t.live_bytes(), t.allocated_bytes()
    assert t.expire(1.6) == 1                                            # key 1 idle 1.6 > 1.0
    assert t.rows(np.array([1]))[0] == -1 and t.rows(np.array([2]))[0] >= 0
    assert len(t.pending) == 0 and t.live_bytes() < before                # live memory is bounded
    assert t.allocated_bytes() >= alloc                                  # capacity is kept (rows are reused)
    assert t.rows_for_train(np.array([5, 5], dtype=np.int64), 1.7)[0] in (0, 1)   # a freed row is reused


def _tiny_stream(n=640, seed=0) -> Stream:
    rng = np.random.default_rng(seed)
    keys = {"user": rng.integers(0, 50, n).astype(np.int64), "item": rng.integers(100, 130, n).astype(np.int64)}
    y = (rng.random(n) < 0.3).astype(np.int8)
    return Stream(t=np.linspace(0.0, 2.0, n, endpoint=False), y=y, p=None, keys=keys)


def _model(seed=0) -> Model:
    return Model.build(MODEL, ["user", "item"], lambda f: {"kind": "cuckoo"}, seed)


def test_serving_knows_only_what_sync_pushed():
    m = _model()
    s = _tiny_stream()
    m.train_batch(s.take(slice(0, 64)), s.y[:64], 0.1)
    sv = Serving(m)                                                      # hand-over: all known
    new = {"user": np.array([10_000], dtype=np.int64), "item": np.array([100], dtype=np.int64)}
    loss, touched = m.train_batch(new, np.array([1], dtype=np.int8), 0.2)
    sv.mark(touched)
    unknown = {"user": np.array([99_999], dtype=np.int64), "item": np.array([100], dtype=np.int64)}
    assert np.allclose(sv.predict(m, new), sv.predict(m, unknown))     # new ID: zeros, as unknown
    sv.sync_sparse(m)
    sv.sync_dense(m)
    assert np.allclose(sv.predict(m, new), m.predict(new), atol=1e-6)  # after sync: the trainer's view
    assert sv.rows_pushed >= 2


def test_schedule_fires_once_per_boundary():
    s = Schedule(0.25, 0.1)
    assert not s.due(0.2) and s.due(0.26) and not s.due(0.3) and s.due(0.9) and not s.due(0.95)
    assert not Schedule(None, 0.0).due(1e9)


def test_progressive_validation_predicts_before_training():
    s = _tiny_stream()
    m = _model()
    sys_ = online.System(m, {"a": Serving(m)}, {"a": Schedule(1e-9, 0.0)}, {"a": Schedule(1e-9, 0.0)})
    before = m.snapshot()
    preds = online.empty_preds(["a", "trainer"], 64)
    online.stream(sys_, s, 0, 64, 64, preds, 0)
    assert np.allclose(preds["trainer"], before.predict(s.take(slice(0, 64))))   # the untrained model's
    assert not np.allclose(m.predict(s.take(slice(0, 64))), preds["trainer"])    # training happened after


def test_training_is_deterministic_and_a_snapshot_is_independent():
    s = _tiny_stream()
    a, b = _model(3), _model(3)
    for m in (a, b):
        m.train_batch(s.take(slice(0, 64)), s.y[:64], 0.1)
    snap = a.snapshot()
    a.train_batch(s.take(slice(64, 128)), s.y[64:128], 0.2)
    keys = s.take(slice(0, 64))
    assert np.array_equal(snap.predict(keys), b.predict(keys))
    assert not np.array_equal(a.predict(keys), b.predict(keys))


STREAM = OmegaConf.create({"days": 2, "events_per_day": 3000, "n_users": 2000, "zipf_a": 1.1, "n_items": 800,
                           "prebirth_days": 1.0, "pop_sigma": 1.0, "pop_tau": 1.0, "latent_dim": 4, "latent_std": 0.6,
                           "item_bias_std": 0.5, "hot": 1.5, "hot_tau": 0.25, "ctx_vocab": [5, 3], "ctx_effect_std": 0.3,
                           "ctr": 0.12, "bins_per_day": 16})


def test_stream_is_seeded_time_ordered_and_drifts():
    a, b = click_stream.generate(STREAM, 1), click_stream.generate(STREAM, 1)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 6000 and (np.diff(a.t.to_numpy()) >= 0).all() and set(a.day) == {1, 2}
    assert abs(a.p.mean() - 0.12) < 1e-3
    assert a.user.value_counts().iloc[0] > 20 * a.user.value_counts().median()   # Zipf head
    # Drift: an item's click probability falls as it ages (b_item(t)), so a fixed embedding goes stale.
    first = a.groupby("item").t.transform("min")
    young, old = a[(a.t - first) < 0.1], a[(a.t - first) > 0.6]
    assert young.p.mean() > old.p.mean()


def test_movielens_loader_on_a_fixture_csv(tmp_path):
    csv = tmp_path / "ml.csv"
    csv.write_text('movieId,title,year,genres,userId,rating,timestamp\n'
                   '31,"Dangerous Minds",1995,Drama,1,2.5,1260759144\n'
                   '1029,Dumbo,1941,Animation|Children,1,4.0,1260759100\n'
                   '31,"Dangerous Minds",1995,Drama,2,5.0,1260759300\n')
    df = movielens.read_dslabs_csv(csv)
    s = movielens.to_stream(df, 4.0)
    assert list(s.click) == [1, 0, 1] and s.t.iloc[0] == 0.0 and (np.diff(s.t) >= 0).all()
    ids = [set(s[c]) for c in ("user", "movie", "genre", "decade")]
    assert all(not (x & y) for i, x in enumerate(ids) for y in ids[i + 1:])   # separate ID spaces
    csv.write_text("movieId,userId\n1,2\n")
    with pytest.raises(ArtifactError, match="lacks columns"):
        movielens.read_dslabs_csv(csv)


def test_missing_rscript_says_what_to_install(tmp_path):
    with pytest.raises(ArtifactError, match="install r-cran-dslabs: apt-get install --no-install-recommends r-cran-dslabs"):
        movielens.export_dslabs(tmp_path / "x.csv", rscript="Rscript-not-here")


def _ml25m_zip(tmp_path: Path) -> Path:
    z = tmp_path / "ml-25m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ml-25m/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,100\n2,1,3.0,50\n")
        zf.writestr("ml-25m/movies.csv", 'movieId,title,genres\n1,"Toy Story (1995)",Adventure|Animation\n')
        zf.writestr("ml-25m/README.txt", "fixture")
    return z


def test_fetch_grouplens_release_from_a_local_fixture(tmp_path):
    from steps.core.cli import load
    from steps.core.fetch import sha256_file
    from steps.core.io import read_json
    from steps.monolith import fetch

    z = _ml25m_zip(tmp_path)
    argv = [f"movielens.grouplens.url={z.as_uri()}", f"movielens.grouplens.sha256={sha256_file(z)}",
            f"io.cache={tmp_path / 'dl'}", f"io.out={tmp_path / 'ml-25m'}", f"io.lock={tmp_path / 'lock.json'}"]
    fetch.main(load("monolith", "fetch", ["scale=full", *argv]))
    assert sorted(p.name for p in (tmp_path / "ml-25m").iterdir()) == ["movies.csv", "ratings.csv"]
    assert read_json(tmp_path / "lock.json")["sha256"] == sha256_file(z)
    df = movielens.read_grouplens(tmp_path / "ml-25m")
    assert list(df.year) == [1995, 1995] and set(df.genres) == {"Adventure|Animation"}
    bad = [a if not a.startswith("movielens.grouplens.sha256") else "movielens.grouplens.sha256=" + "0" * 64 for a in argv]
    bad = [a.replace(str(tmp_path / "dl"), str(tmp_path / "dl2")) for a in bad]
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch.main(load("monolith", "fetch", ["scale=full", *bad]))
