"""Phase `data`: the images every run trains and is tested on. smoke/mini: Fashion-MNIST subsets
(shared loader steps.data.fashion_mnist; the issue prefers it to the spec's synthetic
GlyphDigits-16). full: CIFAR-10 from the fetched python release (io.raw), standardised per channel
(the shared loader steps.data.cifar10).

    python -m steps.hesso.data scale=mini io.out=data/hesso/images.npz
    python -m steps.hesso.data scale=full io.raw=data/hesso/cifar10 io.out=data/hesso/images.npz
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    d = cfg.data
    n_train, n_test = (None if v is None else int(v) for v in (d.n_train, d.n_test))
    if d.source == "fashion_mnist":
        from steps.data import fashion_mnist

        x, y = fashion_mnist.load("train", n_train, int(d.size), int(d.seed))
        xt, yt = fashion_mnist.load("test", n_test, int(d.size), int(d.seed))
    elif d.source == "cifar10":
        from steps.data import cifar10

        (raw,) = need_io(cfg, "raw")
        x, y = cifar10.load(Path(raw), "train", n_train, int(d.seed))
        xt, yt = cifar10.load(Path(raw), "test", n_test, int(d.seed))
    else:
        raise ConfigError(f"data.source must be fashion_mnist or cifar10, got {d.source!r}")
    digest = save_npz(out, x_train=x, y_train=y, x_test=xt, y_test=yt)
    log.info(f"{d.source} {x.shape[1:]}: {len(y)} train, {len(yt)} test → {out} (sha256 {digest[:12]})")
    return {"n_train": len(y), "n_test": len(yt)}


if __name__ == "__main__":
    run(main, "hesso", "data")
