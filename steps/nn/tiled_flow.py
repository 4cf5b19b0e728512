"""Tiled sampling of a flow velocity field on canvases larger than the model was trained on:
non-overlapping tiles, explicitly overlapping tiles (MultiDiffusion / Mixture-of-Diffusers
style) and Any-Size-Diffusion's Fast Seamless Tiled Diffusion (FSTD, arXiv 2308.16582 §3.2).

FSTD as the official code does it (ASD-upscale, ldm/models/diffusion/ddpm.py,
`p_mean_variance_canvas_accelerate` and `p_sample_loop_canvas_accelerate`): ceil(W / tile)
non-overlapping tiles per axis, the whole grid shifted by a random offset in [0, overlap) drawn
at every step and reset to (0, 0) every `reset_every` steps; tile origins are clamped inside the
canvas; tile predictions are pasted with Gaussian tile weights and divided by the summed
weights; pixels no tile covers at this step (the strip before the shifted grid) take the
previous step's prediction (the "noise reference"). Tile borders move from step to step, so
seams are averaged out at the cost of non-overlapping tiling ("implicit overlap").

Velocities follow steps.nn.rectified_flow: v(x, t, c) with t from 0 (noise) to 1 (data). A
condition `c` with the canvas's spatial shape (B, C, H, W) is cropped with each tile; any other
condition (class vectors) is passed whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

MODES = ("non_overlap", "overlap", "fstd", "whole")


def gaussian_weights(tile: int, var: float = 0.01) -> torch.Tensor:
    """Mixture-of-Diffusers tile weights (the official code's `_gaussian_weights`, var 0.01):
    a separable Gaussian over the tile, peaked at its centre."""
    mid = (tile - 1) / 2
    g = torch.tensor([math.exp(-((i - mid) ** 2) / tile**2 / (2 * var)) / math.sqrt(2 * math.pi * var) for i in range(tile)])
    return g[:, None] * g[None, :]


def grid_origins(size: int, tile: int, offset: int = 0) -> list[int]:
    """Origins of ceil(size / tile) non-overlapping tiles shifted by `offset`, clamped to [0, size − tile]."""
    if size < tile:
        raise ValueError(f"canvas side {size} is smaller than the tile {tile}")
    n = -(-size // tile)
    return [min(max(i * tile + offset, 0), size - tile) for i in range(n)]


def overlap_origins(size: int, tile: int, stride: int) -> list[int]:
    """Origins every `stride` pixels, plus a last tile flush with the far border."""
    if size < tile:
        raise ValueError(f"canvas side {size} is smaller than the tile {tile}")
    out = list(range(0, size - tile + 1, stride))
    if out[-1] != size - tile:
        out.append(size - tile)
    return out


def tiled_velocity(v: Callable, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, tile: int,
                   ys: list[int], xs: list[int], weights: torch.Tensor | None = None,
                   reference: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """The velocity of the canvas x (B, C, H, W) assembled from tiles at origins ys × xs: the
    weighted mean of the tiles covering each pixel; uncovered pixels take `reference`.
    Returns (velocity, number of tile evaluations per canvas)."""
    w = torch.ones(tile, tile) if weights is None else weights
    w = w.to(x)
    acc, norm = torch.zeros_like(x), torch.zeros_like(x[:1, :1])
    spatial = c is not None and c.dim() == 4 and c.shape[-2:] == x.shape[-2:]
    calls = 0
    for oy in ys:
        for ox in xs:
            sl = (..., slice(oy, oy + tile), slice(ox, ox + tile))
            ct = c[sl] if spatial else c
            acc[sl] += w * v(x[sl], t, ct)
            norm[sl] += w
            calls += 1
    covered = norm > 0
    vel = torch.where(covered, acc / norm.clamp_min(1e-12), torch.zeros_like(acc))
    if not bool(covered.all()):
        if reference is None:
            raise ValueError("tiles leave pixels uncovered and there is no reference prediction")
        vel = torch.where(covered, vel, reference)
    return vel, calls


def step_origins(mode: str, h: int, w: int, tile: int, step: int, stride: int | None = None,
                 max_offset: int | None = None, reset_every: int = 4,
                 generator: torch.Generator | None = None) -> tuple[list[int], list[int], tuple[int, int] | None]:
    """Tile origins (ys, xs) of a tiled mode at solver step `step`, and the grid offset used
    (None for `overlap`): what `sample` does at each step, for samplers with their own update
    (e.g. a diffusers scheduler's step)."""
    if mode == "overlap":
        return overlap_origins(h, tile, int(stride)), overlap_origins(w, tile, int(stride)), None
    if mode not in ("non_overlap", "fstd"):
        raise ValueError(f"no tile origins for mode '{mode}'")
    oy = ox = 0
    if mode == "fstd" and step % reset_every != 0:
        oy, ox = (int(o) for o in torch.randint(0, int(max_offset), (2,), generator=generator))
    return grid_origins(h, tile, oy), grid_origins(w, tile, ox), (oy, ox)


@torch.no_grad()
def sample(v: Callable, z: torch.Tensor, c: torch.Tensor, steps: int, mode: str, tile: int,
           stride: int | None = None, max_offset: int | None = None, reset_every: int = 4,
           weighting: str = "gaussian", generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """Euler-solve the flow from z (t = 0) to t = 1 on the whole canvas, tile by tile.

    mode: `non_overlap` (fixed grid), `overlap` (tiles every `stride` px), `fstd` (the fixed grid
    shifted per step by a random offset in [0, max_offset), reset every `reset_every` steps),
    `whole` (the model on the whole canvas: the reference). Returns (x1, info) with info the
    tile evaluations per canvas (`calls`) and the offsets used."""
    if mode not in MODES:
        raise ValueError(f"unknown tiling mode '{mode}'; valid: {', '.join(MODES)}")
    h, w = z.shape[-2:]
    weights = gaussian_weights(tile) if weighting == "gaussian" else None
    x, dt, calls, offsets, ref = z, 1.0 / steps, 0, [], None
    for i in range(steps):
        t = torch.full((z.shape[0],), i * dt, dtype=z.dtype)
        if mode == "whole":
            vel, n = v(x, t, c), 1
        else:
            ys, xs, off = step_origins(mode, h, w, tile, i, stride, max_offset, reset_every, generator)
            if off is not None:
                offsets.append(off)
            vel, n = tiled_velocity(v, x, t, c, tile, ys, xs, weights, ref)
        x = x + dt * vel
        ref = vel  # the official code's noise reference: this step's prediction, for the next step
        calls += n
    return x, {"calls": calls, "offsets": offsets}
