"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando, MIT licence), the one image loader of the
compression papers (otov2, hesso, fast_sparse_convnets, gpusq_vit). Real photographs of clothes,
28×28 grey, 60 000 train / 10 000 test, 10 balanced classes; plain MNIST saturates near 99 % and
hides the differences between pruning methods, Fashion-MNIST does not (a small CNN: ≈ 88–91 %).

Read offline from the Debian package (`apt-get install dataset-fashion-mnist`, installed by
scripts/setup.sh) or from the directory in $PAPERZOO_FASHION_MNIST holding the same four IDX
files. Each file is checked against its SHA-256 before it is decoded.

    from steps.data import fashion_mnist
    x, y = fashion_mnist.load("train", n=12000, size=14, seed=0)   # (N,1,14,14) float32, (N,) int64
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError
from steps.data.digits import stratified_subset

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SHA256 = {  # of the files in github.com/zalandoresearch/fashion-mnist (= the Debian package)
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
SIZES = {"train": 60000, "test": 10000}
# Per-pixel statistics of the training images in [0, 1] (computed from the files; a test checks).
MEAN, STD = 0.2860, 0.3530


def root() -> Path:
    return Path(os.environ.get("PAPERZOO_FASHION_MNIST", str(DEFAULT_ROOT)))


def read_idx(path: Path, check: bool = True) -> np.ndarray:
    """An IDX file (gzip): magic 0x0000 08 ndim, ndim big-endian uint32 sizes, then uint8 data."""
    if not path.is_file():
        raise ArtifactError(
            f"Fashion-MNIST file {path} is missing: install it with 'apt-get install dataset-fashion-mnist' "
            f"or point PAPERZOO_FASHION_MNIST at a directory holding {', '.join(SHA256)}"
        )
    blob = path.read_bytes()
    if check and path.name in SHA256 and hashlib.sha256(blob).hexdigest() != SHA256[path.name]:
        raise ArtifactError(f"Fashion-MNIST file {path} fails its SHA-256 check (corrupt or a different file)")
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError) as err:
        raise ArtifactError(f"Fashion-MNIST file {path} is not a readable gzip file: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise ArtifactError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ArtifactError(f"{path} is truncated: header says {dims}, file holds {data.size} bytes of data")
    return data.reshape(dims)


def raw(split: str, directory: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of split 'train' or 'test'."""
    if split not in FILES:
        raise ValueError(f"Fashion-MNIST split must be one of {sorted(FILES)}, got {split!r}")
    base = directory or root()
    images, labels = (read_idx(base / name) for name in FILES[split])
    if len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise ArtifactError(f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels.astype(np.int64)


def area_windows(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """[lo, hi) input window of each output of area resampling along one axis: floor(i·n_in/n_out)
    … ceil((i+1)·n_in/n_out), the windows of torch's F.interpolate(mode="area")."""
    return [((i * n_in) // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)]


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """(N, 28, 28) float32 in [0, 1] → (N, size, size) by area averaging (block means for 14 and 7).

    Other sizes reproduce torch's F.interpolate(mode="area") bit for bit, in numpy (importing torch
    cost 1.8 s of a 2.5 s smoke data step): each window summed row by row in float32, then divided
    by its height and by its width, the order of torch's CPU kernel (a test checks equality: the
    INT4 QAT arms of gpusq_vit change with a 1e-7 change of their inputs)."""
    if size == 28:
        return images
    if 28 % size == 0:
        k = 28 // size
        return images.reshape(len(images), size, k, size, k).mean(axis=(2, 4))
    win = area_windows(28, size)
    lo = np.array([a for a, _ in win])
    extent = np.array([b - a for a, b in win])
    padded = np.concatenate([images, np.zeros((len(images), 28, 1), images.dtype)], axis=2)
    padded = np.concatenate([padded, np.zeros((len(images), 1, 29), images.dtype)], axis=1)
    acc = np.zeros((len(images), size, size), np.float32)
    for dr in range(extent.max()):  # row-major within each window, as torch; out-of-window
        rows = np.where(dr < extent, lo + dr, 28)  # offsets read the zero pad (s + 0 = s exactly)
        for dc in range(extent.max()):
            cols = np.where(dc < extent, lo + dc, 28)
            acc += padded[:, rows[:, None], cols[None, :]]
    return acc / extent.astype(np.float32)[:, None] / extent.astype(np.float32)[None, :]


def load(
    split: str,
    n: int | None = None,
    size: int = 28,
    seed: int = 0,
    normalize: bool = True,
    directory: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 1, size, size) float32, y (N,) int64): a seeded class-stratified subset of `n` images
    when n is given, area-downsampled to size×size, standardised with the training set's mean and
    std (normalize=False: pixels in [0, 1])."""
    images, labels = raw(split, directory)
    if n is not None:
        if not 0 < n <= len(labels):
            raise ValueError(f"Fashion-MNIST {split} has {len(labels)} images; asked for n={n}")
        if n < len(labels):
            idx = stratified_subset(labels, n, seed)
            images, labels = images[idx], labels[idx]
    x = downsample(images.astype(np.float32) / 255.0, size)
    if normalize:
        x = (x - MEAN) / STD
    return np.ascontiguousarray(x[:, None], dtype=np.float32), labels
