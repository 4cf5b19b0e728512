"""Phase `fetch` (full scale): CIFAR-10 (Krizhevsky 2009), the python release, checked against
the MD5 the dataset's page publishes (and a SHA-256 when params pin one), extracted to io.out.
The digest obtained is recorded in io.lock (copy the sha256 into params/hesso/full.yaml to pin it).

    python -m steps.hesso.fetch scale=full io.cache=data/hesso/downloads io.out=data/hesso/cifar10 \
        io.lock=data/hesso/cifar10.lock.json
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from omegaconf import DictConfig

from steps.core import fetch
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.io import write_json
from steps.core.progress import log

MEMBERS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta")


def md5_file(path: Path) -> str:
    h = hashlib.md5()  # the checksum CIFAR's page publishes, not used for security
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


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


def main(cfg: DictConfig) -> dict:
    cache, out, lock = need_io(cfg, "cache", "out", "lock")
    c = cfg.fetch.cifar10
    url = str(c.url)
    archive = Path(cache) / url.rsplit("/", 1)[-1]
    digest = fetch.download(url, archive, sha256=c.sha256, size=c.size, progress_every_s=float(cfg.progress.every_s))
    md5 = md5_file(archive)
    if c.md5 and md5 != str(c.md5):
        archive.unlink(missing_ok=True)
        raise ArtifactError(f"{archive.name} from {url}: MD5 {md5} is not the published {c.md5}; the file was "
                            f"deleted. Rerun the fetch; if it fails again the source changed: check it, never disable the check")
    names = extract(archive, Path(out))
    write_json(lock, {"url": url, "sha256": digest, "md5": md5, "size": archive.stat().st_size,
                      "files": fetch.hash_tree(out)})
    log.info(f"CIFAR-10 {url} → {out} ({len(names)} files; sha256 {digest}, md5 {md5})")
    return {"sha256": digest}


if __name__ == "__main__":
    run(main, "hesso", "fetch")
