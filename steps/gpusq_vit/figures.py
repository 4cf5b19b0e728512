"""GPUSQ-ViT's figures for the report: the accuracy–size and accuracy–BOPs frontiers with every
arm on them (dense, pruned, QAT, PTQ), and the accuracy drop of each compressed arm."""

from __future__ import annotations

from pathlib import Path

from steps.core import plots

# Arm → (family label, marker, colour): one legend entry per family, each arm annotated.
FAMILY = {
    "dense": ("dense FP32 (teacher)", "*", "black"),
    "sp24_kd": ("2:4 FP32", "o", "tab:blue"), "sp24_nokd": ("2:4 FP32", "o", "tab:blue"),
    "unst50_kd": ("unstructured 50 %", "s", "tab:gray"), "unst50_int8": ("unstructured 50 %", "s", "tab:gray"),
    "gpusq_int8": ("GPUSQ-ViT (2:4 + KD-QAT)", "D", "tab:red"), "gpusq_int4": ("GPUSQ-ViT (2:4 + KD-QAT)", "D", "tab:red"),
    "nokd_int8": ("2:4 + QAT, no KD", "v", "tab:orange"), "nokd_int4": ("2:4 + QAT, no KD", "v", "tab:orange"),
    "ptq_int8": ("2:4 + PTQ", "^", "tab:green"), "ptq_int4": ("2:4 + PTQ", "^", "tab:green"),
    "dense_ptq_int8": ("dense + PTQ", "P", "tab:purple"),
}


def _frontier(ax, acc: dict, comp: dict, key: str, xlabel: str) -> None:
    """`key`: a value of each arm's compression record, dotted for nested ones (graph.bops)."""
    seen = set()

    def value(arm: str) -> float:
        v = comp[arm]
        for part in key.split("."):
            v = v[part]
        return v

    for arm, a in acc.items():
        if arm not in comp:
            continue
        label, marker, colour = FAMILY.get(arm, (arm, "x", "tab:brown"))
        ax.scatter(value(arm), 100 * a, marker=marker, color=colour, s=60,
                   label=None if label in seen else label, zorder=3)
        seen.add(label)
        ax.annotate(arm, (value(arm), 100 * a), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 (%)")
    ax.grid(alpha=0.3)


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    acc = (values.get("accuracy") or {}).get("top1")
    comp = values.get("compression")
    if not acc or not comp:
        return out
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _frontier(axes[0], acc, comp, "packed_kb", "packed model size (kB, log; serialized bytes, 2:4 metadata and scales included)")
    _frontier(axes[1], acc, comp, "graph.bops", "effective BOPs (log; executed graph: 2·MACs × executed share × bits_a·bits_b / 32²)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"GPUSQ-ViT miniature ({cfg.scale}): accuracy against size and compute, every arm")
    plots.save(fig, figdir / "frontier.png")
    out.append(("Top-1 against packed model size and executed-graph effective BOPs (Fashion-MNIST test subset), every arm", "figures/frontier.png"))

    drop = (values.get("accuracy") or {}).get("drop") or {}
    if drop:
        arms = list(drop)
        fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(arms)), 4))
        ax.bar(range(len(arms)), [100 * drop[a] for a in arms], color=[FAMILY.get(a, ("", "", "tab:brown"))[2] for a in arms])
        ax.set_xticks(range(len(arms)), arms, rotation=40, ha="right", fontsize=8)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("top-1 drop vs dense (points)")
        ax.set_title("Accuracy lost by each compressed arm (lower is better)")
        ax.grid(axis="y", alpha=0.3)
        plots.save(fig, figdir / "accuracy_drop.png")
        out.append(("Top-1 drop of each arm against the dense FP32 teacher", "figures/accuracy_drop.png"))
    return out
