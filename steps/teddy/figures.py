"""TEDDY's report figures: the accuracy–sparsity frontier of every arm beside the dense GCN and the
feature-only baseline, the wall time of each ticket, and which edges the degree score removes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots

STYLE = {"teddy": ("TEDDY", "C0", "o"), "teddy_no_kd": ("TEDDY w/o KD", "C9", "s"),
         "inverted": ("inverted score", "C3", "v"), "random": ("random", "C7", "x"), "ugs": ("UGS (iterative)", "C1", "D")}


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    figdir = results_dir / "figures"
    out = []
    fr = values.get("frontier")
    if fr:
        ks = sorted(fr["levels"].values(), key=lambda r: r["k"])
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        ax = axes[0]
        for arm, (label, color, marker) in STYLE.items():
            x = [r["edge_sparsity"] for r in ks]
            y = [r["arms"][arm]["test"] for r in ks]
            e = [r["arms"][arm]["test_std"] for r in ks]
            ax.errorbar(x, y, yerr=e, label=label, color=color, marker=marker, capsize=3)
        ax.axhline(fr["dense"]["gcn"], color="k", ls="--", lw=1, label="dense GCN")
        ax.axhline(fr["dense"]["mlp"], color="k", ls=":", lw=1, label="features only (no edges)")
        ax.set_xlabel("graph sparsity p_g (weight sparsity p_w rises with it: see table)")
        ax.set_ylabel("test accuracy (best-validation epoch)")
        ax.set_title("Graph lottery tickets: accuracy against sparsity")
        ax.legend(fontsize=7)
        ax = axes[1]
        width = 0.8 / len(STYLE)
        for i, (arm, (label, color, _)) in enumerate(STYLE.items()):
            ax.bar(np.arange(len(ks)) + i * width, [r["arms"][arm]["wall_s"] for r in ks], width, label=label, color=color)
        ax.set_xticks(np.arange(len(ks)) + 0.4, [f"k={r['k']}\np_g={r['edge_sparsity']:.2f}" for r in ks])
        ax.set_yscale("log")
        ax.set_ylabel("wall seconds to produce the ticket")
        ax.set_title("Cost of one ticket (one shot vs iterative)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        plots.save(fig, figdir / "frontier.png")
        out.append(("Accuracy against graph sparsity (mean ± std over seeds) and the wall time of each ticket", "figures/frontier.png"))
    sc = values.get("score")
    if sc:
        lv = sorted(sc["levels"].items(), key=lambda kv: kv[1]["edge_sparsity"])
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        x = [v["edge_sparsity"] for _, v in lv]
        ax.plot(x, [v["pruned_max_degree"] for _, v in lv], "o-", label="pruned edges")
        ax.plot(x, [v["kept_max_degree"] for _, v in lv], "s-", label="kept edges")
        ax.set_xlabel("graph sparsity p_g")
        ax.set_ylabel("mean degree of the edge's larger end")
        ax.set_title("TEDDY prunes the edges at hubs first")
        ax.legend()
        fig.tight_layout()
        plots.save(fig, figdir / "score.png")
        out.append(("Mean hub degree of the edges TEDDY's score prunes and keeps, per level", "figures/score.png"))
    return out
