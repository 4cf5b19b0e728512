"""Phase `fetch` (full scale only): the real regression designs, downloaded with checksums.

One asset per job (named by the last part of io.out): the archive is downloaded (resumable, verified: steps.core.fetch) into
io.cache, the member holding the table is extracted into io.out (a folder, assembled beside
it and renamed into place), and <out>.lock.json records the URL and the SHA-256 actually
received. A null sha256 in params is never invented: copy the digest from the lock to pin it.

    python -m steps.linf_regression.fetch scale=full \
        io.cache=data/linf_regression/downloads io.out=data/linf_regression/raw/california
"""

from __future__ import annotations

import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core import fetch as fetchlib
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import write_json
from steps.core.progress import log
from steps.linf_regression.common import plain


def extract(archive: Path, kind: str, member: str, dest: Path) -> Path:
    """Extract `member` of a zip or tgz archive to dest/member; returns its path."""
    if kind == "zip":
        fetchlib.unzip(archive, dest, members=[member])
    elif kind == "tgz":
        try:
            with tarfile.open(archive, "r:gz") as tf:
                try:
                    info = tf.getmember(member)
                except KeyError:
                    raise ArtifactError(f"{archive} has no member {member}") from None
                tf.extract(info, dest, filter="data")
        except tarfile.TarError as e:
            raise ArtifactError(f"{archive} is not a valid tar.gz ({e}); delete it and rerun the fetch step") from None
    elif kind == "none":
        (dest / member).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, dest / member)
    else:
        raise ConfigError(f"unknown archive kind '{kind}'; valid: zip, tgz, none")
    return dest / member


def fetch_asset(name: str, spec: dict, cache: Path, out: Path) -> dict:
    archive = cache / spec["file"]
    digest = fetchlib.download(spec["url"], archive, sha256=spec.get("sha256"), size=spec.get("size"))
    build = out.with_name(f".{out.name}.build")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    extract(archive, spec.get("archive", "none"), spec["member"], build)
    shutil.rmtree(out, ignore_errors=True)
    build.rename(out)
    return {"asset": name, "url": spec["url"], "sha256": digest, "pinned": bool(spec.get("sha256")),
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": fetchlib.hash_tree(out)}


def load_table(spec: dict, raw: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a fetched comma-separated table: raw/<asset>/<member>, target column
    `target_col`, the first `rows` rows (null: all)."""
    import pandas as pd

    path = Path(raw) / spec["asset"] / spec["member"]
    if not path.exists():
        raise ArtifactError(f"missing fetched table {path}; run the fetch rule (scale=full)")
    try:
        df = pd.read_csv(path, header=None, nrows=spec.get("rows"))
    except (ValueError, pd.errors.ParserError) as e:
        raise ArtifactError(f"{path} is not a numeric CSV ({e}); delete its folder and fetch again") from None
    data = df.to_numpy(dtype=np.float64)
    t = int(spec["target_col"]) % data.shape[1]
    return np.delete(data, t, axis=1), data[:, t]


def main(cfg: DictConfig) -> dict:
    cache, out = need_io(cfg, "cache", "out")
    name = Path(out).name
    assets = plain(cfg.fetch.assets)
    if name not in assets:
        raise ConfigError(f"io.out must end in an asset name; assets: {', '.join(assets)}")
    lock = fetch_asset(name, assets[name], Path(cache), Path(out))
    if not lock["pinned"]:
        log.info(f"{name}: no sha256 in params; got {lock['sha256']} (recorded in {out}.lock.json; pin it in full.yaml)")
    write_json(f"{out}.lock.json", lock)
    return lock


if __name__ == "__main__":
    run(main, "linf_regression", "fetch")
