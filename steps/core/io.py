"""Atomic writes and self-checking datasets.

Every output is written to a temporary file in the same directory and renamed into place, so a
crash never leaves a half-written file that looks complete. Datasets (.npz, .parquet) carry the
SHA-256 of their content; loading recomputes it, and a missing, truncated or altered file is
reported with its path and what to do, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError, remedy

HASH_KEY = "__sha256__"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "file"):
    path = Path(path)
    require(path, what)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{what} {path} is corrupt ({e.__class__.__name__}); {remedy(path)}") from None


def require(path: str | os.PathLike, what: str = "file") -> Path:
    """The path, or an ArtifactError that says how to produce it."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing {what} {path}; {remedy(path)}")
    return path


def content_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> str:
    """Write arrays plus their content hash; returns the hash."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    digest = content_hash(arrays)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, **{HASH_KEY: np.array(digest)})
    return digest


def load_npz(path: str | os.PathLike, what: str = "dataset") -> dict[str, np.ndarray]:
    """Load and verify an npz written by save_npz."""
    path = require(path, what)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError, OSError ...
        raise ArtifactError(f"{what} {path} is corrupt ({e.__class__.__name__}); {remedy(path)}") from None
    stored = arrays.pop(HASH_KEY, None)
    if stored is None:
        raise ArtifactError(f"{what} {path} has no content hash (not written by paperzoo); {remedy(path)}")
    if str(stored) != content_hash(arrays):
        raise ArtifactError(f"{what} {path} fails its content hash (altered or corrupt); {remedy(path)}")
    return arrays


def save_parquet(path: str | os.PathLike, table) -> str:
    """Write a pandas DataFrame as parquet with its content hash in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(table, preserve_index=False)
    digest = _table_hash(t)
    t = t.replace_schema_metadata({**(t.schema.metadata or {}), HASH_KEY.encode(): digest.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(t, tmp)
    return digest


def load_parquet(path: str | os.PathLike, what: str = "dataset"):
    """Load and verify a parquet written by save_parquet, as a pandas DataFrame."""
    import pyarrow.parquet as pq

    path = require(path, what)
    try:
        t = pq.read_table(path)
    except Exception as e:
        raise ArtifactError(f"{what} {path} is corrupt ({e.__class__.__name__}); {remedy(path)}") from None
    stored = (t.schema.metadata or {}).get(HASH_KEY.encode())
    if stored is None or stored.decode() != _table_hash(t.replace_schema_metadata(None)):
        raise ArtifactError(f"{what} {path} fails its content hash (altered or corrupt); {remedy(path)}")
    return t.to_pandas()


def _table_hash(t) -> str:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    plain = t.replace_schema_metadata(None).combine_chunks()
    with pa.ipc.new_stream(sink, plain.schema) as w:
        w.write_table(plain)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
