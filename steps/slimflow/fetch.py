"""Phase `fetch` (full scale only; nothing downloads at smoke or mini):

* CIFAR-10's training images: the python archive, checked against its size and published MD5
  (the one torchvision checks), resumable, unpacked into one content-hashed npz;
* the evaluation and loss weights (`fetch.files`: Inception-v3 for FID, AlexNet and the LPIPS
  v0.1 heads), each checked against its sha256 where params give one (else the digest fetched
  is logged and written to <weights>/lock.json, to copy into params);
* the teacher 1-flow, whose weights the user supplies (`fetch.teacher_dir`, a diffusers
  UNet2DModel folder: config.json + weights), copied into io.teacher.

    python -m steps.slimflow.fetch scale=full fetch.teacher_dir=/path/to/rf_cifar10_diffusers \
        io.cache=data/slimflow/cache io.out=data/slimflow/cifar10_train.npz \
        io.weights=data/slimflow/weights io.teacher=models/slimflow/teacher_1rf
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.fetch import download, md5_file
from steps.core.io import save_npz, write_text
from steps.core.progress import log
from steps.slimflow.images import unpack_cifar10


def copy_teacher(src, dst) -> None:
    """The user's teacher folder into the pipeline (a diffusers UNet2DModel: config.json + weights)."""
    if not src:
        raise ConfigError("full scale needs the teacher 1-flow's weights: set slimflow=\"fetch.teacher_dir=<folder>\" "
                          "(a diffusers UNet2DModel folder with config.json)")
    src, dst = Path(str(src)), Path(dst)
    if not (src / "config.json").is_file():
        raise ArtifactError(f"teacher folder {src} has no config.json: not a diffusers UNet2DModel folder")
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def main(cfg: DictConfig) -> dict:
    cache, out, weights, teacher = need_io(cfg, "cache", "out", "weights", "teacher")
    f = cfg.fetch
    copy_teacher(f.teacher_dir, teacher)
    src = f.cifar10
    archive = Path(cache) / str(src.name)
    sha = download(str(src.url), archive, sha256=src.get("sha256"), size=src.get("size"),
                   progress_every_s=float(cfg.progress.every_s))
    md5 = md5_file(archive)
    if src.get("md5") and md5 != str(src.md5):
        raise ArtifactError(f"{archive} has MD5 {md5}, expected {src.md5}: delete it and rerun the fetch")
    lock = {str(src.name): {"sha256": sha, "md5": md5}}
    for entry in f.files:
        lock[str(entry.name)] = {"sha256": download(str(entry.url), Path(weights) / str(entry.name),
                                                    sha256=entry.get("sha256"), size=entry.get("size"),
                                                    progress_every_s=float(cfg.progress.every_s))}
    images = unpack_cifar10(archive)
    digest = save_npz(out, images=images)
    write_text(Path(weights) / "lock.json", json.dumps(lock, indent=2, sort_keys=True))
    log.info(f"CIFAR-10: {len(images)} training images (archive sha256 {sha}, md5 {md5}) → {out}")
    return {"n": len(images), "sha256": digest}


if __name__ == "__main__":
    run(main, "slimflow", "fetch")
