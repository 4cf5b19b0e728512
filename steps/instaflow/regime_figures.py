"""The regime study's report figures (steps.core.report with report.figures set to this module):
the map of the one-step FID gap (direct distillation − InstaFlow) over data setting × capacity
with its spread, the straightness of each flow per cell, and each flow's most-steps FID per cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots
from steps.instaflow.regime import axes, beyond_spread, cell, where_it_holds


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    reg = values.get("regime")
    if not reg:
        return []
    figdir = results_dir / "figures"
    data, caps = axes(reg)
    out = [(gap_caption(reg, data, caps), gap_map(reg, data, caps, figdir / "gap_map.png"))]
    cells = [cell(d, c) for d in data for c in caps]
    out.append(("Straightness of the 1-RF and the 2-RF per cell (lower: straighter; mean ± std over seeds)",
                per_flow(reg["straightness"], cells, "straightness S", figdir / "straightness.png", log=True)))
    out.append(("FID of the 1-RF and the 2-RF at their most Euler steps per cell (each data setting has its own "
                "feature extractor: compare within a setting)",
                per_flow(reg["fid50"], cells, "FID (classifier features)", figdir / "fid_multistep.png")))
    return [(caption, f"figures/{path.name}") for caption, path in out]


def gap_caption(reg: dict, data: list[str], caps: list[str]) -> str:
    """The map in words: the cells where the claim holds, and from which data setting on."""
    held = [cell(d, c) for d in data for c in caps if beyond_spread(reg["gap"][cell(d, c)])]
    starts = where_it_holds(reg)
    said = "; ".join(f"{c}: from {starts[c]} through {data[-1]}" if starts[c] else f"{c}: not at {data[-1]}"
                     for c in caps)
    return ("Gap map: one-step FID of direct distillation minus InstaFlow's (long budget), mean ± std over seeds "
            "(colour: relative to the direct arm's FID); > 0: InstaFlow better; ✓: beyond the seed spread. "
            f"InstaFlow ahead beyond the spread in: {', '.join(held) or 'no cell'}. "
            f"Holding from the easiest such data setting through the hardest, per capacity: {said}.")


def gap_map(reg: dict, data: list[str], caps: list[str], path: Path) -> Path:
    """Heat map of the relative gap (colour) annotated with the gap ± std in FID units."""
    plt = plots.pyplot()
    rel = np.array([[reg["rel_gap"][cell(d, c)]["mean"] for c in caps] for d in data])
    lim = max(0.05, float(np.nanmax(np.abs(rel))))
    fig, ax = plt.subplots(figsize=(1.9 * len(caps) + 2.2, 0.9 * len(data) + 1.6))
    im = ax.imshow(rel, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for i, d in enumerate(data):
        for j, c in enumerate(caps):
            g = reg["gap"][cell(d, c)]
            mark = " ✓" if beyond_spread(g) else ""
            ax.text(j, i, f"{g['mean']:+.2f} ± {g['std']:.2f}{mark}\n({100 * rel[i, j]:+.0f} %)",
                    ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(caps)), caps)
    ax.set_yticks(range(len(data)), data)
    ax.set_xlabel("capacity (the student's width)")
    ax.set_ylabel("data setting (complexity ↓)")
    ax.set_title("FID(direct) − FID(InstaFlow), one step", fontsize=10)
    fig.colorbar(im, ax=ax, label="gap / FID(direct)")
    plots.save(fig, path)
    return path


def per_flow(node: dict, cells: list[str], ylabel: str, path: Path, log: bool = False) -> Path:
    """Grouped bars: the 1-RF beside the 2-RF in every cell, with the std over seeds."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(cells) + 2, 3.6))
    x = np.arange(len(cells))
    for k, (flow, label) in enumerate((("rf1", "1-RF (teacher)"), ("rf2", "2-RF (reflow)"))):
        m = [node[c][flow]["mean"] for c in cells]
        s = [node[c][flow]["std"] for c in cells]
        ax.bar(x + (k - 0.5) * 0.38, m, 0.38, yerr=s, capsize=2, label=label)
    ax.set_xticks(x, cells, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    plots.save(fig, path)
    return path
