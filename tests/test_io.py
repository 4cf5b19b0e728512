"""steps.core.io: atomic writes and content-hashed datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steps.core import io
from steps.core.errors import ArtifactError


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_only_at_the_end(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with io.atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"


def test_npz_roundtrip_and_hash(tmp_path):
    p = tmp_path / "d.npz"
    digest = io.save_npz(p, x=np.arange(6.0).reshape(2, 3), y=np.array([1, 2]))
    back = io.load_npz(p)
    assert set(back) == {"x", "y"} and np.array_equal(back["x"], np.arange(6.0).reshape(2, 3))
    assert digest == io.content_hash(back)


def test_corrupt_npz_is_reported_with_path_and_remedy(tmp_path):
    p = tmp_path / "d.npz"
    io.save_npz(p, x=np.zeros(1000))
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError) as e:
        io.load_npz(p, "digits dataset")
    assert str(p) in str(e.value) and "snakemake" in str(e.value) and "dvc" in str(e.value)
    assert p.read_bytes() == bytes(raw), "a corrupt file is never overwritten"


def test_altered_npz_fails_its_hash(tmp_path):
    p = tmp_path / "d.npz"
    io.save_npz(p, x=np.zeros(10))
    arrays = dict(np.load(p))
    arrays["x"] = np.ones(10)
    np.savez(p, **arrays)  # keeps the old hash: content no longer matches
    with pytest.raises(ArtifactError, match="fails its content hash"):
        io.load_npz(p)


def test_truncated_npz(tmp_path):
    p = tmp_path / "d.npz"
    io.save_npz(p, x=np.zeros(1000))
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="is corrupt"):
        io.load_npz(p)


def test_missing_dataset(tmp_path):
    with pytest.raises(ArtifactError, match=r"missing dataset .*nope.npz; regenerate it"):
        io.load_npz(tmp_path / "nope.npz")


def test_npz_without_hash_is_refused(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros(3))
    with pytest.raises(ArtifactError, match="no content hash"):
        io.load_npz(p)


def test_parquet_roundtrip_and_tamper(tmp_path):
    import pyarrow.parquet as pq

    p = tmp_path / "t.parquet"
    df = pd.DataFrame({"id": [0, 1, 2], "text": ["a", "b", "c"]})
    io.save_parquet(p, df)
    pd.testing.assert_frame_equal(io.load_parquet(p), df)
    t = pq.read_table(p)
    meta = t.schema.metadata
    t2 = pd.DataFrame({"id": [0, 1, 2], "text": ["a", "b", "X"]})
    import pyarrow as pa

    pq.write_table(pa.Table.from_pandas(t2, preserve_index=False).replace_schema_metadata(meta), p)
    with pytest.raises(ArtifactError, match="fails its content hash"):
        io.load_parquet(p)


def test_read_json_reports_corruption(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{not json")
    with pytest.raises(ArtifactError, match="is corrupt"):
        io.read_json(p, "metrics file")
