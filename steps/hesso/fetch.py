"""Phase `fetch` (full scale): CIFAR-10 (Krizhevsky 2009), the python release, checked against
the MD5 the dataset's page publishes (and a SHA-256 when params pin one), extracted to io.out
(the shared steps.data.cifar10). The digest obtained is recorded in io.lock (copy the sha256
into params/hesso/full.yaml to pin it).

    python -m steps.hesso.fetch scale=full io.cache=data/hesso/downloads io.out=data/hesso/cifar10 \
        io.lock=data/hesso/cifar10.lock.json
"""

from __future__ import annotations

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    from steps.data import cifar10

    cache, out, lock = need_io(cfg, "cache", "out", "lock")
    rec = cifar10.fetch(cfg.fetch.cifar10, cache, out, lock, progress_every_s=float(cfg.progress.every_s))
    log.info(f"CIFAR-10 {rec['url']} → {out} ({len(rec['names'])} files; sha256 {rec['sha256']}, md5 {rec['md5']})")
    return {"sha256": rec["sha256"]}


if __name__ == "__main__":
    run(main, "hesso", "fetch")
