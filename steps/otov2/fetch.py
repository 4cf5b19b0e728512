"""Phase `fetch` (full scale): CIFAR-10's python release, MD5-checked against the dataset's
page (and SHA-256 when params pin one), extracted to io.out by the shared steps.data.cifar10;
the digests obtained go to io.lock.

    python -m steps.otov2.fetch scale=full io.cache=data/otov2/downloads io.out=data/otov2/cifar10 \
        io.lock=data/otov2/cifar10.lock.json
"""

from __future__ import annotations

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    from steps.data import cifar10

    cache, out, lock = need_io(cfg, "cache", "out", "lock")
    if "cifar10" not in cfg.fetch:
        raise ConfigError(f"otov2 fetches CIFAR-10 at full scale only; fetch.cifar10 is not set at scale={cfg.scale}")
    rec = cifar10.fetch(cfg.fetch.cifar10, cache, out, lock, progress_every_s=float(cfg.progress.every_s))
    log.info(f"CIFAR-10 {rec['url']} → {out} ({len(rec['names'])} files; sha256 {rec['sha256']}, md5 {rec['md5']})")
    return {"sha256": rec["sha256"]}


if __name__ == "__main__":
    run(main, "otov2", "fetch")
