"""Phase `fetch` (full scale only): the real inputs, each asset into its own folder.

    python -m steps.instaflow.sd.fetch scale=full io.cache=data/instaflow/downloads \
        io.sd15=data/instaflow/sd15 [io.coco=data/instaflow/coco io.laion=data/instaflow/laion ...]

Every `io.<asset>=<dir>` names an asset of `sd.assets` to fetch into <dir>:

* sd15 — Stable Diffusion 1.5 in diffusers format, the 1-flow teacher (InstaFlow §3.1);
* coco — MS COCO 2017 val images and captions, the evaluation set (§4: FID-5k, CLIP score);
* laion — LAION text metadata, the source of training prompts (§4: "prompts from laion2B-en");
* lpips — AlexNet and LPIPS v0.1 weights for the second distillation stage (§3.3);
* inception — the FID Inception weights torchmetrics / torch-fidelity use;
* clip — the CLIP model of the CLIP score.

An asset is a Hugging Face repository (`kind: hf`, revision resolved to a commit and recorded),
a list of URLs (`kind: files`, resumable, verified against `sha256` where params give one,
optionally unzipped) or, when `local_dir` is set, a copy of a folder the user already has.
Downloads live in io.cache (not an output, so Snakemake never deletes a half-done transfer);
the asset folder is assembled beside its destination and renamed into place. <dir>.lock.json
records what was fetched: every file's SHA-256 and size, the URL or repo commit, and whether
the hash was checked against params (`pinned`) or only recorded. Copy recorded hashes and
commits into params/instaflow/full.yaml to pin them.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.fetch import download, hash_tree, hf_snapshot, unzip
from steps.core.io import write_json
from steps.core.progress import log


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy, across file systems) every visible file of `src` into `dst`."""
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(p, target)
        except OSError:
            shutil.copy2(p, target)


def file_name(entry: dict) -> str:
    return entry.get("name") or Path(urlparse(entry["url"]).path).name


def fetch_files(spec: dict, cache: Path, build: Path) -> dict:
    """Download each URL into the cache (resumable, verified), then unzip or link it."""
    record = {}
    for entry in spec["files"]:
        name = file_name(entry)
        digest = download(entry["url"], cache / name, entry.get("sha256"), entry.get("size"))
        prefix = entry.get("sha256_prefix")
        if prefix and not digest.startswith(str(prefix)):
            (cache / name).unlink(missing_ok=True)
            raise ArtifactError(f"{name} from {entry['url']}: sha256 {digest} does not start with {prefix} "
                                "(the prefix its file name carries); the download was deleted, rerun the fetch step")
        if entry.get("unzip"):
            unzip(cache / name, build, entry.get("members"))
        else:
            build.mkdir(parents=True, exist_ok=True)
            link_tree_file(cache / name, build / name)
        record[name] = {"url": entry["url"], "sha256": digest, "size": (cache / name).stat().st_size,
                        "pinned": entry.get("sha256") is not None}
    return record


def link_tree_file(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def fetch_asset(name: str, spec: dict, out: Path, cache: Path) -> dict:
    """Fetch one asset into `out`; returns its lock record."""
    build = out.with_name(f".{out.name}.fetch.tmp")
    shutil.rmtree(build, ignore_errors=True)
    lock: dict = {"asset": name, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if spec.get("local_dir"):
        src = Path(spec["local_dir"])
        if not src.is_dir():
            raise ArtifactError(f"sd.assets.{name}.local_dir {src} is not a folder")
        link_tree(src, build)
        lock["source"] = {"local_dir": str(src.resolve())}
    elif spec["kind"] == "hf":
        commit = hf_snapshot(spec["repo_id"], cache, spec.get("revision"), spec.get("repo_type", "model"),
                             spec.get("allow_patterns"), spec.get("max_files"))
        link_tree(cache, build)
        lock["source"] = {"repo_id": spec["repo_id"], "repo_type": spec.get("repo_type", "model"),
                          "revision": spec.get("revision"), "commit": commit}
    elif spec["kind"] == "files":
        lock["source"] = {"urls": fetch_files(spec, cache, build)}
    else:
        raise ConfigError(f"sd.assets.{name}.kind must be hf or files, got {spec['kind']!r}")
    missing = [e for e in spec.get("expect") or [] if not (build / e).exists()]
    if missing:
        shutil.rmtree(build, ignore_errors=True)
        raise ArtifactError(f"asset {name} lacks {', '.join(missing)} after fetching; check sd.assets.{name} in params")
    lock["files"] = hash_tree(build)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(build, out)
    return lock


def fetch_assets(cfg: DictConfig, assets: dict) -> dict[str, int]:
    """Fetch every asset the command line names as io.<asset>=<dir> (downloads cached under
    io.cache) and write <dir>.lock.json for each; {asset: number of files}. Shared by every
    paper whose full scale fetches assets (their params' `assets` sections)."""
    (cache,) = need_io(cfg, "cache")
    names = [k for k in cfg.io if k != "cache"]
    unknown = [k for k in names if k not in assets]
    if unknown or not names:
        raise ConfigError(f"fetch takes io.cache and io.<asset>=<dir> for assets {', '.join(assets)}; "
                          f"got {', '.join(unknown) or 'none'}")
    out = {}
    for name in names:
        spec = assets[name]
        if spec.get("kind") == "files" and not spec.get("files") and not spec.get("local_dir"):
            raise ConfigError(f"asset {name} has no download source: set its local_dir in params to your copy")
        dest = Path(cfg.io[name])
        log.info(f"fetching {name} into {dest}")
        lock = fetch_asset(name, spec, dest, Path(cache) / name)
        unpinned = [f for f, r in lock["source"].get("urls", {}).items() if not r["pinned"]]
        if unpinned:
            log.info(f"{name}: no sha256 in params for {', '.join(unpinned)}; recorded in {dest}.lock.json")
        write_json(f"{dest}.lock.json", lock)
        out[name] = len(lock["files"])
    return out


def main(cfg: DictConfig) -> dict:
    return fetch_assets(cfg, OmegaConf.to_container(cfg.sd.assets, resolve=True))


if __name__ == "__main__":
    run(main, "instaflow", "fetch")
