"""scikit-learn's bundled handwritten digits (UCI optdigits test set: 1797 images, 8×8, 0..16),
scaled to [-1, 1] and flattened. Real data, shipped with scikit-learn, no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def raw() -> tuple[np.ndarray, np.ndarray]:
    """The file `sklearn.datasets.load_digits` reads (data/digits.csv.gz: 64 pixels then the
    label per row), read directly: importing scikit-learn costs 1.6 s, the file 0.05 s.
    tests/test_data.py checks the two agree."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        from steps.core.errors import ArtifactError

        raise ArtifactError("scikit-learn is not installed: its bundled digits are the data (pip install scikit-learn)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(np.int64)


def load(n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 64) float32 in [-1, 1], labels (N,) int64); a seeded stratified subset of
    `n` images when n is given."""
    data, target = raw()
    x = (data.astype(np.float32) / 8.0 - 1.0).reshape(len(data), -1)
    y = target
    if n is not None and n < len(y):
        idx = stratified_subset(y, n, seed)
        x, y = x[idx], y[idx]
    return x, y


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices (sorted) of a random subset of size n with each class in proportion: every class
    keeps floor(n·share), and the remainder goes to the classes with the largest fractions."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    keep = [rng.permutation(np.nonzero(labels == c)[0])[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(keep))


def to_images(x: np.ndarray, side: int = 8) -> np.ndarray:
    """(N, side*side) in [-1, 1] → (N, side, side) in [0, 1] for plotting."""
    return np.clip((np.asarray(x).reshape(-1, side, side) + 1.0) / 2.0, 0.0, 1.0)
