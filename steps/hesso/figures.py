"""HESSO's report figures: accuracy against achieved group sparsity and against the compact
network's FLOPs (every run on the frontier), and the tuning-free sweep (HESSO over P, DHSPG
over λ)."""

from __future__ import annotations

from pathlib import Path

from steps.core import plots

STYLE = {  # method family of a run name → (label, marker)
    "hesso": ("HESSO (hybrid saliency)", "o"),
    "cric": ("HESSO-CRIC", "s"),
    "magnitude": ("HESSO, magnitude-only saliency", "^"),
    "dhspg": ("DHSPG (OTOv2)", "D"),
    "dense": ("dense", "*"),
}


def family(name: str) -> str:
    return next((k for k in STYLE if name.startswith(k)), "other")


def _frontier(ax, rows: dict, xkey: str, xscale: float = 1.0) -> None:
    by = {}
    for name, r in rows.items():
        by.setdefault(family(name), []).append((r[xkey] * xscale, r["acc"], name))
    for fam, pts in by.items():
        label, marker = STYLE.get(fam, (fam, "x"))
        pts.sort()
        main = [p for p in pts if "_p" not in p[2] and "_l" not in p[2]]
        if len(main) > 1:
            ax.plot([p[0] for p in main], [p[1] for p in main], marker=marker, label=label)
        else:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ls="none", ms=9 if fam == "dense" else 6, label=label)
        for x, y, name in pts:
            if "_p" in name or "_l" in name:
                ax.plot([x], [y], marker=marker, ls="none", mfc="none", color="grey")
                ax.annotate(name.split("_")[-1], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    acc = values.get("accuracy")
    if not acc:
        return []
    plt = plots.pyplot()
    rows = acc["runs"]
    figdir = results_dir / "figures"
    out = []

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _frontier(ax, rows, "group_sparsity")
    ax.set_xlabel("achieved group sparsity (share of ZIGs exactly zero)")
    ax.set_ylabel("test accuracy (Fashion-MNIST)")
    ax.set_title(f"Accuracy against group sparsity ({cfg.scale}; sweeps in grey: P / λ)")
    ax.legend(fontsize=7)
    plots.save(fig, figdir / "acc_vs_sparsity.png")
    out.append(("Accuracy against achieved group sparsity, every run", "figures/acc_vs_sparsity.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _frontier(ax, rows, "mflops")
    ax.set_xscale("log")
    ax.set_xlabel("MFLOPs of the compact network (one 14×14 image)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against compute of the constructed subnetwork")
    ax.legend(fontsize=7)
    plots.save(fig, figdir / "acc_vs_flops.png")
    out.append(("Accuracy against FLOPs of the compact subnetwork", "figures/acc_vs_flops.png"))

    sens = values.get("sensitivity")
    if sens:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
        for ax, key, title in ((axes[0], "hesso_periods", "HESSO: periods P"), (axes[1], "dhspg_lambda", "DHSPG: λ")):
            s = sens[key]
            names = list(s.get("runs") or {})
            ax.bar(range(len(names)), [s["runs"][n] for n in names], color="C0" if key.startswith("hesso") else "C3")
            for i, n in enumerate(names):
                ax.annotate(f"sp {s['sparsity'][n]:.2f}", (i, s["runs"][n]), ha="center", fontsize=7,
                            xytext=(0, 3), textcoords="offset points")
            ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
            ax.set_title(f"{title} (std {s.get('std', float('nan')):.4f})", fontsize=9)
        axes[0].set_ylabel("test accuracy")
        lo = min(v for k in ("hesso_periods", "dhspg_lambda") for v in sens[k].get("runs", {}).values()) if any(
            sens[k].get("runs") for k in ("hesso_periods", "dhspg_lambda")) else 0
        axes[0].set_ylim(max(0.0, lo - 0.05), None)
        fig.suptitle("Tuning-free: accuracy at target 0.7 over each method's hyperparameter (sp = achieved sparsity)", fontsize=9)
        plots.save(fig, figdir / "sensitivity.png")
        out.append(("Hyperparameter sensitivity: HESSO over P, DHSPG over λ", "figures/sensitivity.png"))
    return out
