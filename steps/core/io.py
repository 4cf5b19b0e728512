"""Atomic writes and self-checking artifacts.

Every output is written to a temporary file in the same directory and renamed into place, so a
crash never leaves a half-written file that looks complete. Outputs get the ordinary mode of a
new file under the process's umask (0644 under umask 022), not tempfile's private 0600.

Every artifact verifies itself when loaded, and a missing, truncated or altered one is reported
with its path and how to rebuild it, never used:

* datasets (.npz, .parquet) carry the SHA-256 of their content (`__sha256__`: an npz array, a
  parquet schema-metadata key), recomputed on load;
* torch files (checkpoints, models: `save_torch` / `load_torch`) carry a SHA-256 seal inside
  their zip archive (steps.core.seal), checked before torch unpickles anything. A torch file
  without a seal (written before seals existed, or by another program) is loaded with a warning.

Every artifact written inside a step also records where it comes from (steps.core.provenance:
paper, scale, phase, config hash, the jobs that produced it): `__paperzoo__` (an npz array
holding JSON; not part of the content hash, so equal data keep equal hashes), the parquet
schema-metadata key `paperzoo`, the seal's `record`, and `__paperzoo__` in a JSON artifact
written with `write_json(..., artifact=True)`. Loading one inside a step refuses it when it was
built at another scale, and carries its jobs forward into what the step writes.

    from steps.core.io import save_npz, load_npz
    save_npz("data/p/x.npz", x=...)      # {"x": ...} back from load_npz, verified
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

from steps.core import provenance
from steps.core.errors import ArtifactError, remedy

HASH_KEY = "__sha256__"
RECORD_KEY = "__paperzoo__"  # npz array / JSON key holding the provenance record
PARQUET_RECORD_KEY = b"paperzoo"


def file_mode() -> int:
    """The mode a new file gets under this process's umask (0o644 under umask 022)."""
    try:  # Linux ≥ 4.7 shows the umask without changing it
        with open("/proc/self/status") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it.
    The file gets the umask's ordinary mode (mkstemp's 0600 would hide it from other users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    finally:
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


def write_json(path: str | os.PathLike, obj, artifact: bool = False) -> None:
    """Atomically write `obj` as JSON. With `artifact` (a dict that a later step reads with
    read_json), inside a step it also records its provenance under `__paperzoo__`."""
    rec = provenance.record(path) if artifact and isinstance(obj, Mapping) else None
    if rec is not None:
        obj = {**obj, RECORD_KEY: rec}
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "file"):
    """Parse a JSON file; a record written by write_json(artifact=True) is checked (scale) and
    removed from what is returned."""
    path = Path(path)
    require(path, what)
    try:
        raw = path.read_bytes()
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{what} {path} is corrupt ({e.__class__.__name__}); {remedy(path)}") from None
    if isinstance(obj, dict) and RECORD_KEY in obj:
        obj = dict(obj)
        provenance.note_read(path, what, obj.pop(RECORD_KEY), hashlib.sha256(raw).hexdigest())
    return obj


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
    """Write arrays plus their content hash (and, inside a step, the provenance record); returns
    the hash."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    digest = content_hash(arrays)
    rec = provenance.record(path)
    extra = {HASH_KEY: np.array(digest)}
    if rec is not None:
        extra[RECORD_KEY] = np.array(json.dumps(rec, separators=(",", ":")))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, **extra)
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
    rec = arrays.pop(RECORD_KEY, None)
    if stored is None:
        raise ArtifactError(f"{what} {path} has no content hash (not written by paperzoo); {remedy(path)}")
    if str(stored) != content_hash(arrays):
        raise ArtifactError(f"{what} {path} fails its content hash (altered or corrupt); {remedy(path)}")
    provenance.note_read(path, what, _parse_record(rec, path, what), str(stored))
    return arrays


def save_parquet(path: str | os.PathLike, table) -> str:
    """Write a pandas DataFrame as parquet with its content hash in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(table, preserve_index=False)
    digest = _table_hash(t)
    meta = {**(t.schema.metadata or {}), HASH_KEY.encode(): digest.encode()}
    rec = provenance.record(path)
    if rec is not None:
        meta[PARQUET_RECORD_KEY] = json.dumps(rec, separators=(",", ":")).encode()
    t = t.replace_schema_metadata(meta)
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
    meta = t.schema.metadata or {}
    stored = meta.get(HASH_KEY.encode())
    if stored is None or stored.decode() != _table_hash(t.replace_schema_metadata(None)):
        raise ArtifactError(f"{what} {path} fails its content hash (altered or corrupt); {remedy(path)}")
    provenance.note_read(path, what, _parse_record(meta.get(PARQUET_RECORD_KEY), path, what), stored.decode())
    return t.to_pandas()


def _parse_record(raw, path, what) -> dict | None:
    """A stored provenance record (JSON text, bytes or a 0-d string array); None when absent."""
    if raw is None:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        rec = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{what} {path} has a corrupt provenance record ({e.__class__.__name__}); {remedy(path)}") from None
    return rec if isinstance(rec, dict) else None


# ---- torch files: checkpoints and models, sealed (steps.core.seal) -------------------------

_VERIFIED: dict[tuple, object] = {}  # (path, inode, size, mtime) -> Seal: hash a file once per process
_WARNED: set[str] = set()


def save_torch(path: str | os.PathLike, obj, extra: dict | None = None) -> str:
    """torch.save `obj` atomically, sealed with its SHA-256 and (inside a step) its provenance
    record, plus `extra` keys in that record; returns the digest."""
    import torch

    from steps.core import seal

    rec = provenance.record(path)
    if extra:
        rec = {**(rec or {}), **extra}
    # Through a file object: given a path, torch names the archive's root folder after the
    # (random) temporary file, and identical objects would differ byte for byte.
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
        return seal.seal(tmp, rec)


def verify_torch(path: str | os.PathLike, what: str = "checkpoint"):
    """The seal of the torch file at `path` (steps.core.seal.Seal), checked once per process and
    file version; an ArtifactError when it fails. Does not load the file."""
    from steps.core import seal

    path = require(path, what)
    st = path.stat()
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    found = _VERIFIED.get(key)
    if found is None:
        try:
            found = seal.verify(path)
        except seal.SealError as e:
            raise ArtifactError(f"{what} {path} is altered or corrupt: {e}; {remedy(path)}") from None
        _VERIFIED[key] = found
    return found


def load_torch(path: str | os.PathLike, what: str = "checkpoint", map_location="cpu",
               weights_only: bool = False, mmap: bool = False):
    """torch.load a file written by save_torch after checking its seal (one read of the file)
    and, inside a step, its scale; a file without a seal is loaded with a warning."""
    import torch

    found = verify_torch(path, what)
    if not found.sealed and str(path) not in _WARNED:
        from steps.core.progress import log

        _WARNED.add(str(path))
        log.info(f"warning: {what} {path} has no SHA-256 seal (written before seals, or by another program); "
                 f"loading it unverified")
    provenance.note_read(path, what, found.record, found.digest)
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only, mmap=mmap)
    except Exception as e:  # truncated zip, bad pickle, ...
        raise ArtifactError(f"{what} {path} is corrupt ({e.__class__.__name__}); {remedy(path)}") from None


def _table_hash(t) -> str:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    plain = t.replace_schema_metadata(None).combine_chunks()
    with pa.ipc.new_stream(sink, plain.schema) as w:
        w.write_table(plain)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
