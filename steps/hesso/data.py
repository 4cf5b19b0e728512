"""Phase `data`: the Fashion-MNIST subsets every arm trains and is tested on (shared loader
steps.data.fashion_mnist; the issue prefers it to the spec's synthetic GlyphDigits-16).

    python -m steps.hesso.data scale=mini io.out=data/hesso/fmnist.npz
"""

from __future__ import annotations

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.io import save_npz
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    from steps.data import fashion_mnist

    (out,) = need_io(cfg, "out")
    d = cfg.data
    x, y = fashion_mnist.load("train", int(d.n_train), int(d.size), int(d.seed))
    xt, yt = fashion_mnist.load("test", int(d.n_test), int(d.size), int(d.seed))
    digest = save_npz(out, x_train=x, y_train=y, x_test=xt, y_test=yt)
    log.info(f"Fashion-MNIST {d.size}×{d.size}: {len(y)} train, {len(yt)} test → {out} (sha256 {digest[:12]})")
    return {"n_train": len(y), "n_test": len(yt)}


if __name__ == "__main__":
    run(main, "hesso", "data")
