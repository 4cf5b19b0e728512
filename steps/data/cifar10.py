"""CIFAR-10 (Krizhevsky 2009), the python release: download with its published MD5 (and a
SHA-256 when params pin one), extract the batch files flat, and load them as standardised
arrays. Shared by the full scales of hesso and otov2 (their `fetch` phases are thin wrappers).

    from steps.data import cifar10
    cifar10.fetch(cfg.fetch.cifar10, cache="data/x/downloads", out="data/x/cifar10",
                  lock="data/x/cifar10.lock.json")                      # full-scale fetch step
    x, y = cifar10.load("data/x/cifar10", "train", n=None, seed=0)      # (50000, 3, 32, 32) float32

Params (`fetch.cifar10` of a paper's full.yaml): url, md5 (the dataset page's), sha256 (null until
pinned: the lock file records the digest obtained), size (bytes). Tests point url at a file://
fixture of the same layout.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError
from steps.core.fetch import md5_file

MEMBERS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")

# Per-channel statistics of the CIFAR-10 training images in [0, 1] (the usual published values).
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def extract(archive: Path, out: Path) -> list[str]:
    """The release's batch files, flat into `out` (atomically: a temporary folder, then rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        stage = Path(tmp) / "flat"
        stage.mkdir()
        with tarfile.open(archive, "r:gz") as tar:
            found = {}
            for m in tar.getmembers():
                name = Path(m.name).name
                if m.isfile() and name in MEMBERS:
                    found[name] = m
            missing = [n for n in MEMBERS if n not in found]
            if missing:
                raise ArtifactError(f"{archive} lacks {', '.join(missing)}: not the CIFAR-10 python release")
            for name, m in found.items():
                with tar.extractfile(m) as src, open(stage / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    return sorted(MEMBERS)


def fetch(c, cache: str | os.PathLike, out: str | os.PathLike, lock: str | os.PathLike,
          progress_every_s: float = 30.0) -> dict:
    """Download (resumable; size and SHA-256 checked when given), check the MD5, extract into
    `out`, and write the lock file {url, sha256, md5, size, files}. `c`: the fetch.cifar10 params."""
    from steps.core import fetch as core_fetch
    from steps.core.io import write_json

    url = str(c.url)
    archive = Path(cache) / url.rsplit("/", 1)[-1]
    digest = core_fetch.download(url, archive, sha256=c.sha256, size=c.size, progress_every_s=progress_every_s)
    md5 = md5_file(archive)
    if c.md5 and md5 != str(c.md5):
        archive.unlink(missing_ok=True)
        raise ArtifactError(f"{archive.name} from {url}: MD5 {md5} is not the published {c.md5}; the file was "
                            f"deleted. Rerun the fetch; if it fails again the source changed: check it, never disable the check")
    names = extract(archive, Path(out))
    record = {"url": url, "sha256": digest, "md5": md5, "size": archive.stat().st_size,
              "files": core_fetch.hash_tree(out)}
    write_json(lock, record)
    return {**record, "names": names}


def load(raw: str | os.PathLike, split: str, n: int | None = None, seed: int = 0,
         mean=CIFAR_MEAN, std=CIFAR_STD) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 3, 32, 32) float32, (x/255 − mean)/std per channel; y (N,) int64) from the release's
    pickles in `raw`; `n` < all: a stratified subset (seeded)."""
    raw = Path(raw)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for name in names:
        path = raw / name
        if not path.is_file():
            raise ArtifactError(f"CIFAR-10 file {path} is missing; run the fetch rule (snakemake --config scale=full ...)")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
            raise ArtifactError(f"CIFAR-10 file {path} is corrupt ({e.__class__.__name__}); delete it and rerun the fetch rule") from None
    x, y = np.concatenate(xs), np.concatenate(ys)
    if n is not None and n < len(y):
        from steps.data.digits import stratified_subset

        idx = stratified_subset(y, n, seed)
        x, y = x[idx], y[idx]
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    return np.ascontiguousarray((x.astype(np.float32) / 255.0 - m) / s), y
