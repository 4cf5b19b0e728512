"""Small helpers the phases share: seeded generators by name, thread limits, the grid."""

from __future__ import annotations

import contextlib
import zlib

import numpy as np
from omegaconf import DictConfig, OmegaConf

from steps.core.device import allotted_cores


def key(name: str) -> int:
    """A stable 32-bit integer for a name (instance, sketch): seeds never depend on list order."""
    return zlib.crc32(name.encode())


def rng_for(seed: int, *parts, trial: int | None = None) -> np.random.Generator:
    """An independent generator for (seed, names or ints..., trial): the same draws whatever the
    job split (shards) or the order of the lists in params."""
    entropy = [int(seed)] + [key(p) if isinstance(p, str) else int(p) for p in parts]
    spawn = () if trial is None else (int(trial),)
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=spawn))


def blas_threads(cfg: DictConfig):
    """Limit BLAS/OpenMP threads to the job's cores (cfg.threads, 0 = allotted)."""
    from threadpoolctl import threadpool_limits

    n = int(cfg.threads) if int(cfg.threads) > 0 else allotted_cores()
    return threadpool_limits(limits=n) if n > 0 else contextlib.nullcontext()


def plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)


def cell(c) -> str:
    """The metrics key of a grid cell: c=4 → 'c4', c=0.5 → 'c0p5'."""
    s = f"{float(c):g}".replace(".", "p")
    return f"c{s}"
