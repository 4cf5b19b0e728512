"""NitroFusion's report figures: one-step FID per arm and start (every seed shown), the
discriminator-overfitting gap during training, bottom-up refinement, and sample grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import metrics, plots
from steps.core.io import load_npz
from steps.instaflow.figures import mosaic


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    fid = values.get("fid")
    if fid:
        starts = list(fid["one_step"])
        fig, axes = plt.subplots(1, len(starts), figsize=(5 * len(starts), 3.8), squeeze=False)
        for ax, start in zip(axes[0], starts, strict=True):
            arms = list(fid["one_step"][start])
            for i, arm in enumerate(arms):
                v = fid["one_step"][start][arm]
                ax.bar(i, v["mean"], color="C1" if arm == "nitro" else "C0", alpha=0.6)
                ax.scatter([i] * len(v["per_seed"]), v["per_seed"], color="k", s=12, zorder=3)
            t = fid.get("teacher", {})
            for name, v in t.items():
                ax.axhline(v["mean"], ls="--", color="gray", label=f"teacher {name}")
            ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right", fontsize=8)
            ax.set_title(f"start: {start}")
            ax.set_ylabel("one-step FID (digits-classifier features)")
            ax.legend(fontsize=7)
        fig.suptitle(f"One-step FID per arm ({cfg.scale}; bars: mean, dots: seeds)", fontsize=9)
        plots.save(fig, figdir / "fid_arms.png")
        out.append(("One-step FID per arm and start (dots: training seeds)", "figures/fid_arms.png"))

        fig, axes = plt.subplots(1, len(starts), figsize=(5 * len(starts), 3.5), squeeze=False)
        for ax, start in zip(axes[0], starts, strict=True):
            for arm, curve in fid["refine"].get(start, {}).items():
                pts = sorted((int(k[1:]), v) for k, v in curve.items())
                n, s = zip(*pts, strict=True)
                ax.errorbar(n, [v["mean"] for v in s], yerr=[v["std"] for v in s], marker="o", capsize=3, label=arm)
            ax.set_xticks([1, 2, 4])
            ax.set_xlabel("model calls (bottom-up refinement, same weights)")
            ax.set_ylabel("FID")
            ax.set_title(f"start: {start}")
            ax.legend(fontsize=7)
        plots.save(fig, figdir / "refinement.png")
        out.append(("Bottom-up refinement: FID against steps with the same weights", "figures/refinement.png"))

    d_path = results_dir / "d_overfit.json"
    trace = metrics.read(d_path).get("extra", {}).get("trace") if d_path.exists() else None
    if trace:
        starts = sorted({k.split("/")[0] for k in trace})
        fig, axes = plt.subplots(1, len(starts), figsize=(5 * len(starts), 3.5), squeeze=False)
        for ax, start in zip(axes[0], starts, strict=True):
            for j, arm in enumerate(a for a in ("single_head", "pool_no_refresh", "nitro", "nitro_no_local") if f"{start}/{a}" in trace):
                for k, (_seed, pts) in enumerate(sorted(trace[f"{start}/{arm}"].items())):
                    p = np.array(pts, dtype=float)
                    ax.plot(p[:, 0], p[:, 1] - p[:, 2], color=f"C{j}", alpha=0.7, label=arm if k == 0 else None)
            ax.axhline(0, color="gray", lw=0.5)
            ax.set_xlabel("adversarial step")
            ax.set_ylabel("D acc. train reals − held-out reals")
            ax.set_title(f"start: {start}")
            ax.legend(fontsize=7)
        plots.save(fig, figdir / "d_gap.png")
        out.append(("Discriminator overfitting gap during training (one line per seed)", "figures/d_gap.png"))

    samples = results_dir / "samples.npz"
    if samples.exists():
        grids = load_npz(samples, "sample grids")
        grids.pop("row_captions", None)
        plots.image_panels({n: mosaic(grids[n]) for n in sorted(grids)}, figdir / "samples.png",
                           "One-step samples, same noises for every arm; rows: 'the digit 0' … 'the digit 9'",
                           ncol=5, cell=(2.6, 3.3), label=lambda n: n.removeprefix("grid_"))
        out.append(("One-step samples per start and arm (rows: digits 0–9)", "figures/samples.png"))
    return out
