"""TextAtlas5M's report figures: example images per domain, dataset statistics, OCR-mini on
ground truth vs degraded images per domain, generator F1 per arm and domain, and sample grids
(real | short-trained | TextAtlas-trained) per domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots
from steps.core.io import load_npz
from steps.textatlas5m.synth import DOMAINS

LABEL = {"short": "Short", "clean": "CleanTextSynth", "blend": "TextVisionBlend", "styled": "StyledTextSynth", "dense": "dense (3 levels)"}


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    stats, gt, diff, gen = (values.get(k) for k in ("dataset_stats", "ocr_on_gt", "difficulty", "generation"))
    if stats:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3))
        for ax, key, name in zip(axes, ("words", "chars", "line_height_px"), ("words / image", "characters / image", "line height (px)"), strict=True):
            ax.bar([LABEL[d] for d in DOMAINS], [stats[d][key] for d in DOMAINS], color="tab:blue")
            ax.set_title(name)
            ax.tick_params(axis="x", rotation=30, labelsize=7)
        fig.suptitle(f"TextAtlasEval-mini statistics ({cfg.scale})")
        plots.save(fig, figdir / "dataset_stats.png")
        out.append(("Dataset statistics per domain", "figures/dataset_stats.png"))
    if gt and diff:
        doms = [*DOMAINS, "dense"]
        x = np.arange(len(doms))
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(x - 0.2, [gt[d]["f1"] for d in doms], 0.4, label="real eval images")
        ax.bar(x + 0.2, [diff["degraded"][d]["f1"] for d in doms], 0.4, label="degraded (×2 resolution loss + noise)")
        ax.axhline(gt["noise"]["f1"], color="k", ls=":", label="noise images")
        ax.set_xticks(x, [LABEL[d] for d in doms], rotation=20, fontsize=8)
        ax.set_ylabel("OCR-mini word F1 (official)")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
        ax.set_title("OCR-mini on ground truth and on degraded images: benchmark difficulty")
        plots.save(fig, figdir / "ocr_difficulty.png")
        out.append(("OCR-mini on real and degraded eval images per domain", "figures/ocr_difficulty.png"))
    if gen:
        doms = [*DOMAINS, "dense"]
        x = np.arange(len(doms))
        fig, ax = plt.subplots(figsize=(7, 3.5))
        arms = list(gen["ocr"])
        for k, arm in enumerate(arms):
            ax.bar(x + (k - 0.5) * 0.4, [gen["ocr"][arm][d]["f1"] for d in doms], 0.4, label=f"trained on {arm}")
        ax.set_xticks(x, [LABEL[d] for d in doms], rotation=20, fontsize=8)
        ax.set_ylabel("OCR-mini word F1 of generated images")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
        ax.set_title(f"Generators on TextAtlasEval-mini ({cfg.scale})")
        plots.save(fig, figdir / "generation_f1.png")
        out.append(("Generator word F1 per arm and domain", "figures/generation_f1.png"))
    samples_path = results_dir / "samples.npz"
    if samples_path.exists():
        s = load_npz(samples_path, "samples")
        cols = [k for k in ("images_real", "images_short", "images_atlas") if k in s]
        n = int(cfg.report.get("grid_n", 4)) if "grid_n" in cfg.report else 4
        fig, axes = plt.subplots(len(DOMAINS) * n, len(cols), figsize=(3.2 * len(cols), 0.55 * len(DOMAINS) * n + 0.6))
        axes = np.atleast_2d(axes)
        for r, dom in enumerate(DOMAINS):
            idx = np.nonzero(s["domain"] == dom)[0][:n]
            for k, i in enumerate(idx):
                for c, col in enumerate(cols):
                    ax = axes[r * n + k, c]
                    ax.imshow(s[col][i], cmap="gray", vmin=0, vmax=255)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if r == 0 and k == 0:
                        ax.set_title({"images_real": "real (ground truth)", "images_short": "trained on short",
                                      "images_atlas": "trained on TextAtlas"}[col], fontsize=8)
                    if c == 0:
                        ax.set_ylabel(LABEL[dom][:6], fontsize=6, rotation=0, labelpad=16)
        fig.suptitle("Samples: same prompt and noise per row", fontsize=9)
        plots.save(fig, figdir / "samples.png")
        out.append(("Sample grid: real | short-trained | TextAtlas-trained, per domain", "figures/samples.png"))
    return out
