"""asd's report figures: sample grids per arm and canvas bucket, composition metrics per bucket,
upscaled canvases per tiling mode, and the FSTD trade-off (seam, PSNR, calls, wall time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots
from steps.core.io import load_npz

ARMS = ("real", "square", "arad", "square_tiled")
ARM_LABEL = {"real": "real scenes", "square": "square-only", "arad": "ARAD", "square_tiled": "square + tiles"}
MODES = ("non_overlap", "overlap", "fstd", "whole")


def mosaic(cells: np.ndarray, ncol: int, pad: int = 2) -> np.ndarray:
    """(n, H, W) images in [-1, 1] → one image in [0, 1] of ncol columns with `pad` grey px between."""
    n, h, w = cells.shape
    nrow = -(-n // ncol)
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad), 0.5)
    for k in range(n):
        i, j = divmod(k, ncol)
        out[pad + i * (h + pad): pad + i * (h + pad) + h, pad + j * (w + pad): pad + j * (w + pad) + w] = np.clip((cells[k] + 1) / 2, 0, 1)
    return out


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    comp = values.get("composition")
    samples = results_dir / "samples.npz"
    if comp and samples.exists():
        grids = load_npz(samples, "sample grids")
        buckets = [b for b in comp["real"] if b != "non_square"]  # the square bucket first (params order)
        fig, axes = plt.subplots(len(buckets), len(ARMS), figsize=(3.4 * len(ARMS), 2.2 * len(buckets)), squeeze=False)
        for i, b in enumerate(buckets):
            for j, arm in enumerate(ARMS):
                ax = axes[i, j]
                ax.axis("off")
                cells = grids.get(f"grid_{arm}_{b}")
                if cells is None:
                    continue
                h, w = cells.shape[-2:]
                ax.imshow(mosaic(cells, 5), cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"{ARM_LABEL[arm]}, {h}×{w}: count err {comp[arm][b]['count_error']:.2f}", fontsize=7)
        fig.suptitle("Samples per arm (columns) and canvas H×W (rows); prompts 0..9 left to right, top to bottom "
                     "(real scenes: random digits); the same noises for every arm", fontsize=8)
        plots.save(fig, figdir / "samples.png")
        out.append(("Samples per arm and canvas shape (prompts 0–9; same noises for every arm)", "figures/samples.png"))

        fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
        for ax, key, title in zip(axes, ("count_error", "cropped", "prompt_acc", "fid"),
                                  ("object-count error rate", "cropped-object rate", "prompt accuracy",
                                   "FID (digits-classifier features)"), strict=True):
            wbar = 0.8 / len(ARMS)
            for k, arm in enumerate(ARMS):
                ax.bar(np.arange(len(buckets)) + k * wbar, [comp[arm][b][key] for b in buckets], wbar, label=ARM_LABEL[arm])
            ax.set_xticks(np.arange(len(buckets)) + wbar * (len(ARMS) - 1) / 2, [b[1:] for b in buckets], fontsize=8)
            ax.set_xlabel("canvas H×W (first: the square training size)", fontsize=8)
            ax.set_title(title, fontsize=9)
        axes[0].legend(fontsize=7)
        plots.save(fig, figdir / "composition.png")
        out.append(("Composition per canvas shape and arm", "figures/composition.png"))

    fstd = values.get("fstd")
    up = results_dir / "upscaled.npz"
    if fstd and up.exists():
        g = load_npz(up, "upscaled canvases")
        cols = [("lr", "LR input"), *((f"up_{m}", m) for m in MODES), ("hr", "HR ground truth")]
        n = min(3, len(g["hr"]))
        tile = int(fstd["tile"])
        fig, axes = plt.subplots(n, len(cols), figsize=(2.6 * len(cols), 1.6 * n), squeeze=False)
        for i in range(n):
            for j, (key, title) in enumerate(cols):
                ax = axes[i, j]
                ax.imshow(np.clip((g[key][i] + 1) / 2, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if key.startswith("up_") or key == "hr":
                    h, w = g[key][i].shape
                    for x in range(tile, w, tile):
                        ax.axvline(x - 0.5, color="red", lw=0.4, alpha=0.5)
                    for y in range(tile, h, tile):
                        ax.axhline(y - 0.5, color="red", lw=0.4, alpha=0.5)
                if i == 0:
                    extra = f"\nseam {fstd[key[3:]]['seam']:.2f}, PSNR {fstd[key[3:]]['psnr']:.1f}" if key.startswith("up_") else ""
                    ax.set_title(title + extra, fontsize=7)
        fig.suptitle("2× super-resolution per tiling mode (red: the fixed 16×16 tile grid)", fontsize=8)
        plots.save(fig, figdir / "upscaled.png")
        out.append(("Upscaled canvases per tiling mode (red lines: the fixed tile grid)", "figures/upscaled.png"))

        fig, axes = plt.subplots(1, 4, figsize=(14, 3))
        for ax, key, title in zip(axes, ("seam", "psnr", "calls", "wall_s"),
                                  ("seam score (1 = none)", "PSNR vs HR (dB)", "model calls per canvas", "wall time (s)"), strict=True):
            ax.bar(MODES, [fstd[m][key] for m in MODES], color=["C0", "C1", "C2", "C7"])
            ax.set_title(title, fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
        plots.save(fig, figdir / "fstd.png")
        out.append(("FSTD against non-overlapping and overlapping tiles", "figures/fstd.png"))
    return out
