"""The model grid (log n_H x T x N_H x U) in one fixed order, shared by solve_levels and synthesize."""

from __future__ import annotations

import itertools

import numpy as np
from omegaconf import DictConfig


def axes(grid: DictConfig) -> dict[str, np.ndarray]:
    return {"log_nh": np.asarray(grid.log_nh, float), "t": np.asarray(grid.t, float),
            "col": np.asarray(grid.col, float), "u": np.asarray(grid.u, float)}


def models(grid: DictConfig) -> list[tuple[int, int, int, int]]:
    """Index tuples (i_nh, i_t, i_col, i_u) of every model, density fastest-varying last."""
    ax = axes(grid)
    return list(itertools.product(range(len(ax["log_nh"])), range(len(ax["t"])), range(len(ax["col"])), range(len(ax["u"]))))


def chunk_of(grid: DictConfig, k: int) -> list[int]:
    """Flat model indices of chunk k: dealt round-robin, so every chunk holds low and high densities."""
    n = len(models(grid))
    return list(range(k, n, int(grid.chunks)))


def key(log_nh: float) -> str:
    """A metrics key for a density: 10.0 -> 'lg10_0', 6.5 -> 'lg6_5'."""
    digits = 1 if abs(log_nh * 10 - round(log_nh * 10)) < 1e-9 else 2
    return "lg" + f"{log_nh:.{digits}f}".replace(".", "_")
