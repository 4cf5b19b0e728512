"""InstaFlow's report figures: FID against sampling steps, per-caption-kind one-step FID, and a
sample grid per variant (rows: the exact captions "the digit 0..9", then the vague ones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots
from steps.core.io import load_npz
from steps.data.digits import to_images


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()

    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    fid = values.get("fid")
    if fid:
        fig, ax = plt.subplots(figsize=(6, 4))
        for flow, label in (("rf1", "1-RF (teacher)"), ("rf2", "2-RF (reflow)")):
            pts = sorted((int(k[1:]), v) for k, v in fid["multistep"].get(flow, {}).items())
            if pts:
                n, s = zip(*pts, strict=True)
                ax.errorbar(n, [v["mean"] for v in s], yerr=[v["std"] for v in s], marker="o", capsize=3, label=label)
        for name, v in fid["one_step"].items():
            if "distill" in name or name.startswith("instaflow"):
                ax.errorbar([1], [v["mean"]], yerr=[v["std"]], marker="*" if name.startswith("instaflow") else "x",
                            ms=10, ls="none", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("Euler steps")
        ax.set_ylabel("FID (digits-classifier features)")
        ax.set_title(f"FID against sampling steps ({cfg.scale}; mean ± std over seeds)")
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "fid_vs_steps.png")
        out.append(("FID against sampling steps", "figures/fid_vs_steps.png"))

        kinds = [k for k in ("exact", "partial", "vague") if k in fid["by_caption"]]
        variants = list(fid["one_step"])
        fig, ax = plt.subplots(figsize=(7, 3.5))
        w = 0.8 / max(1, len(kinds))
        for i, k in enumerate(kinds):
            m = [fid["by_caption"][k][v]["mean"] for v in variants]
            s = [fid["by_caption"][k][v]["std"] for v in variants]
            ax.bar(np.arange(len(variants)) + i * w, m, w, yerr=s, capsize=2, label=f"{k} captions")
        ax.set_xticks(np.arange(len(variants)) + w * (len(kinds) - 1) / 2, variants, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("one-step FID")
        ax.set_title("One-step FID by caption specificity")
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "fid_by_caption.png")
        out.append(("One-step FID by caption specificity", "figures/fid_by_caption.png"))

    samples = results_dir / "samples.npz"
    if samples.exists():
        grids = load_npz(samples, "sample grids")
        rows = [str(r) for r in grids.pop("row_captions")]
        plots.image_panels({n: mosaic(grids[n]) for n in sorted(grids)}, figdir / "samples.png",
                           "Samples, same noises and captions for every variant; rows: "
                           + "; ".join(rows[:10:3]) + " … then the vague captions",
                           ncol=4, cell=(3.2, 4.2), label=lambda n: n.removeprefix("grid_"))
        out.append(("Samples per variant (rows: 'the digit 0' … 'the digit 9', then vague captions)", "figures/samples.png"))
    return out


def mosaic(grid: np.ndarray, pad: int = 1) -> np.ndarray:
    """(rows, cols, side²) samples in [-1, 1] → one image with `pad` blank pixels between cells."""
    r, c, d = grid.shape
    side = int(round(d**0.5))
    cells = to_images(grid.reshape(-1, d), side).reshape(r, c, side, side)
    out = np.zeros((r * (side + pad) + pad, c * (side + pad) + pad))
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (side + pad), pad + j * (side + pad)
            out[y : y + side, x : x + side] = cells[i, j]
    return out
