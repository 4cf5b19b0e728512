"""Phase `fetch` (full scale only): one benchmark dataset into data/oneflow/<dataset>, from
`full.datasets.<dataset>`: a folder you already have (`local_dir`, linked, never downloaded), or
its files downloaded with resumable, checksummed transfers (steps.core.fetch). The digest of
every file is recorded in data/oneflow/<dataset>.lock.json; a sha256 in params is enforced.

    python -m steps.oneflow.fetch scale=full io.dataset=imagenet io.out=data/oneflow/imagenet \
        io.cache=data/oneflow/downloads
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.fetch import download, hash_tree, unzip
from steps.core.io import write_json
from steps.core.progress import log


def fetch_dataset(spec: dict, out: Path, cache: Path) -> dict:
    """Fetch one dataset into `out` (assembled beside it, renamed into place); its lock record."""
    lock: dict = {"fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": {}}
    build = out.with_name(out.name + ".building")
    if spec.get("local_dir"):
        src = Path(spec["local_dir"]).expanduser()
        if not src.is_dir():
            raise ArtifactError(f"full.datasets local_dir {src} is not a folder")
        build.parent.mkdir(parents=True, exist_ok=True)
        if build.exists() or build.is_symlink():
            build.unlink()
        build.symlink_to(src.resolve(), target_is_directory=True)
        lock["source"] = {"local_dir": str(src.resolve())}
    else:
        if not spec.get("files"):
            raise ConfigError("a dataset needs files (url, sha256, size) or a local_dir")
        build.mkdir(parents=True, exist_ok=True)
        urls = {}
        for entry in spec["files"]:
            name = entry.get("name") or Path(urlparse(entry["url"]).path).name
            digest = download(entry["url"], cache / name, entry.get("sha256"), entry.get("size"))
            if entry.get("unzip"):
                unzip(cache / name, build, entry.get("members"))
            else:
                target = build / name
                if not target.exists():
                    target.hardlink_to(cache / name)
            urls[name] = {"url": entry["url"], "sha256": digest, "pinned": entry.get("sha256") is not None}
        lock["source"] = {"urls": urls}
    missing = [e for e in spec.get("expect", []) if not (build / e).exists()]
    if missing:
        raise ArtifactError(f"{out.name}: fetched, but {', '.join(missing)} missing; check full.datasets in params")
    lock["files"] = hash_tree(build) if not build.is_symlink() else {}
    if out.exists() or out.is_symlink():
        raise ArtifactError(f"{out} exists; remove it to fetch again")
    build.rename(out)
    return lock


def main(cfg: DictConfig) -> dict:
    name, out, cache = need_io(cfg, "dataset", "out", "cache")
    datasets = OmegaConf.to_container(cfg.full.get("datasets") or {}, resolve=True)
    if name not in datasets:
        raise ConfigError(f"unknown dataset {name!r}; full.datasets has: {', '.join(datasets) or 'none'}")
    lock = fetch_dataset(datasets[name], Path(out), Path(cache) / name)
    write_json(f"{out}.lock.json", lock)
    log.info(f"{name}: {len(lock['files'])} files in {out}")
    return {"files": len(lock["files"])}


if __name__ == "__main__":
    run(main, "oneflow", "fetch")
