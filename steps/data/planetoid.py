"""The Planetoid citation graphs (Cora, Citeseer, Pubmed; Yang, Cohen & Salakhutdinov 2016) from
their original files (github.com/kimiyoung/planetoid, data/ind.<name>.<part>), read the way the GCN
and TEDDY code read them: features row-normalised, the Planetoid split (the labelled training
nodes, the next 500 as validation, the 1000 test nodes), Citeseer's isolated test nodes padded.

    g = planetoid.read(Path("data/teddy/planetoid"), "cora")   # same keys as steps.data.csbm

Edges are returned as unique undirected pairs i < j without self-loops (a GCN adds those).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
URL = "https://github.com/kimiyoung/planetoid/raw/master/data/ind.{name}.{part}"
NAMES = ("cora", "citeseer", "pubmed")


def _load(root: Path, name: str, part: str):
    path = root / f"ind.{name}.{part}"
    if not path.is_file():
        raise ArtifactError(f"Planetoid file {path} is missing: run the fetch step (scale=full) or copy it there")
    if part == "test.index":
        return np.array([int(line) for line in path.read_text().split()], dtype=np.int64)
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as err:  # a truncated or foreign pickle
        raise ArtifactError(f"Planetoid file {path} cannot be read ({type(err).__name__}: {err})") from None


def read(root: Path, name: str) -> dict[str, np.ndarray]:
    import scipy.sparse as sp

    if name not in NAMES:
        raise ValueError(f"unknown Planetoid dataset {name!r}; one of {', '.join(NAMES)}")
    x, y, tx, ty, allx, ally, graph = (_load(root, name, p) for p in PARTS[:7])
    test_idx = _load(root, name, "test.index")
    test_sorted = np.sort(test_idx)
    if name == "citeseer":  # isolated test nodes have no features in tx: pad with zero rows
        full = np.arange(test_sorted.min(), test_sorted.max() + 1)
        tx_ext = sp.lil_matrix((len(full), tx.shape[1]))
        tx_ext[test_sorted - test_sorted.min(), :] = tx
        tx = tx_ext
        ty_ext = np.zeros((len(full), ty.shape[1]))
        ty_ext[test_sorted - test_sorted.min(), :] = ty
        ty = ty_ext
    feats = sp.vstack((allx, tx)).tolil()
    feats[test_idx, :] = feats[test_sorted, :]
    feats = sp.csr_matrix(feats)
    rowsum = np.asarray(feats.sum(1)).ravel()
    inv = np.divide(1.0, rowsum, out=np.zeros_like(rowsum, dtype=np.float64), where=rowsum != 0)
    feats = sp.diags(inv) @ feats
    labels = np.vstack((ally, ty))
    labels[test_idx, :] = labels[test_sorted, :]
    n = feats.shape[0]
    pairs = {(min(i, j), max(i, j)) for i, nbrs in graph.items() for j in nbrs if i != j and max(i, j) < n}
    edges = np.array(sorted(pairs), dtype=np.int64).T.reshape(2, -1)
    return {"x": np.asarray(feats.todense(), dtype=np.float32), "y": labels.argmax(1).astype(np.int64),
            "edges": edges, "train": np.arange(len(y)), "val": np.arange(len(y), len(y) + 500), "test": test_sorted}
