"""Phase `data`.

* smoke, mini (`data.source: fashion_mnist`): the class-stratified Fashion-MNIST subsets of the
  miniature, read once through the compression papers' shared loader (steps.data.fashion_mnist:
  SHA-256-checked IDX files, area downsampling, standardisation) and written with their content
  hash; every later phase reads this file (decoding the 47 MB IDX archive in each would cost
  more than its work at smoke).
* full (`data.source: imagenet`): ImageNet-1k is user-provided (licence); this phase indexes the
  class-folder tree at data.root (both splits: image and class counts checked, the listing's
  SHA-256) and writes that small index; later phases stream minibatches from the folder after
  checking it against the index (steps.gpusq_vit.datasets).

    python -m steps.gpusq_vit.data scale=mini io.out=data/gpusq_vit/fmnist.npz
    python -m steps.gpusq_vit.data scale=full data.root=/data/imagenet io.out=data/gpusq_vit/imagenet_index.json
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    d = cfg.data
    t0 = time.monotonic()
    if d.source == "imagenet":
        from steps.gpusq_vit.datasets import write_index

        rec = write_index(cfg, out)
        tr, te = rec["splits"]["train"], rec["splits"]["test"]
        log.info(f"ImageNet at {d.root}: {tr['images']} train / {te['images']} test images, {tr['classes']} classes → {out} "
                 f"({time.monotonic() - t0:.1f} s)")
        return {"train": tr["images"], "test": te["images"]}
    if d.source != "fashion_mnist":
        raise ConfigError(f"data.source must be fashion_mnist (smoke, mini) or imagenet (full), got '{d.source}'")
    from steps.data import fashion_mnist

    xtr, ytr = fashion_mnist.load("train", int(d.n_train), int(d.size), int(d.seed))
    xte, yte = fashion_mnist.load("test", int(d.n_test), int(d.size), int(d.seed))
    digest = save_npz(out, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    log.info(f"Fashion-MNIST {len(ytr)} train / {len(yte)} test at {d.size}×{d.size} → {out} "
             f"(sha256 {digest[:12]}, {time.monotonic() - t0:.1f} s)")
    return {"hash": digest}


if __name__ == "__main__":
    run(main, "gpusq_vit", "data")
