"""Phase `data`: the images every run trains and is tested on. smoke/mini: Fashion-MNIST subsets
(shared loader steps.data.fashion_mnist; the issue prefers it to the spec's synthetic
GlyphDigits-16). full: CIFAR-10 from the fetched python release (io.raw), standardised per channel.

    python -m steps.hesso.data scale=mini io.out=data/hesso/images.npz
    python -m steps.hesso.data scale=full io.raw=data/hesso/cifar10 io.out=data/hesso/images.npz
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import save_npz
from steps.core.progress import log

# Per-channel statistics of the CIFAR-10 training images in [0, 1] (the usual published values).
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load_cifar10(raw: Path, split: str, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 3, 32, 32) float32 standardised, y (N,) int64) from the python release's pickles."""
    import pickle

    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for name in names:
        path = raw / name
        if not path.is_file():
            raise ArtifactError(f"CIFAR-10 file {path} is missing; run the fetch rule (snakemake --config scale=full ...)")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
            raise ArtifactError(f"CIFAR-10 file {path} is corrupt ({e.__class__.__name__}); delete it and rerun the fetch rule") from None
    x, y = np.concatenate(xs), np.concatenate(ys)
    if n is not None and n < len(y):
        from steps.data.digits import stratified_subset

        idx = stratified_subset(y, n, seed)
        x, y = x[idx], y[idx]
    x = (x.astype(np.float32) / 255.0 - np.array(CIFAR_MEAN, np.float32)[:, None, None]) / np.array(CIFAR_STD, np.float32)[:, None, None]
    return np.ascontiguousarray(x), y


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    d = cfg.data
    n_train, n_test = (None if v is None else int(v) for v in (d.n_train, d.n_test))
    if d.source == "fashion_mnist":
        from steps.data import fashion_mnist

        x, y = fashion_mnist.load("train", n_train, int(d.size), int(d.seed))
        xt, yt = fashion_mnist.load("test", n_test, int(d.size), int(d.seed))
    elif d.source == "cifar10":
        (raw,) = need_io(cfg, "raw")
        x, y = load_cifar10(Path(raw), "train", n_train, int(d.seed))
        xt, yt = load_cifar10(Path(raw), "test", n_test, int(d.seed))
    else:
        raise ConfigError(f"data.source must be fashion_mnist or cifar10, got {d.source!r}")
    digest = save_npz(out, x_train=x, y_train=y, x_test=xt, y_test=yt)
    log.info(f"{d.source} {x.shape[1:]}: {len(y)} train, {len(yt)} test → {out} (sha256 {digest[:12]})")
    return {"n_train": len(y), "n_test": len(yt)}


if __name__ == "__main__":
    run(main, "hesso", "data")
