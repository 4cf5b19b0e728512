"""fast_sparse_convnets' report figures: the accuracy–latency frontier (sparse wide against dense
narrow, measured), the kernel speed-ups against sparsity, and accuracy against sparsity."""

from __future__ import annotations

from pathlib import Path

from steps.core import plots

BLOCK_STYLE = {1: ("o", "tab:red", "sparse, unstructured (CSR kernel)"), 4: ("s", "tab:purple", "sparse, 1×4 blocks (BSR kernel)")}


def _frontier(ax, models: dict, latency_of, title: str) -> None:
    dense = sorted((m for m in models.values() if not m["block"]), key=lambda m: m["width"])
    ax.plot([latency_of(m, True) for m in dense], [100 * m["accuracy"] for m in dense], "-o", color="tab:blue",
            label="dense, width multipliers")
    for m in dense:
        ax.annotate(f"{m['width']:g}×", (latency_of(m, True), 100 * m["accuracy"]), fontsize=7,
                    textcoords="offset points", xytext=(3, -9))
    for block, (marker, color, label) in BLOCK_STYLE.items():
        pts = sorted((m for m in models.values() if m["block"] == block), key=lambda m: m["sparsity"])
        if not pts:
            continue
        ax.plot([latency_of(m, False) for m in pts], [100 * m["accuracy"] for m in pts], marker, color=color,
                ls="--", label=label)
        for m in pts:
            ax.annotate(f"{m['width']:g}× {100 * m['sparsity']:.0f}%", (latency_of(m, False), 100 * m["accuracy"]),
                        fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("measured latency, batch 1, 1 thread (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    fr, ks = values.get("frontier"), values.get("kernel_speedup")
    if fr:
        models = fr["models"]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        _frontier(axes[0], models, lambda m, dense: m["latency_ms"],
                  "dense on its best dense kernel (BLAS or same-loop) vs sparse on its sparse kernel")
        _frontier(axes[1], models, lambda m, dense: m["latency_ms_by_kernel"]["dense_loop"] if dense else m["latency_ms"],
                  "dense on the same-loop dense kernel vs sparse on its sparse kernel")
        plots.save(fig, figdir / "frontier.png")
        out.append(("Accuracy against measured latency: sparse wide vs dense narrow (the paper's Fig. 1 frontier)",
                    "figures/frontier.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        dense = [m for m in models.values() if not m["block"]]
        for m in dense:
            ax.axhline(100 * m["accuracy"], color="tab:blue", lw=0.6, ls=":")
            ax.annotate(f"dense {m['width']:g}×", (0.0, 100 * m["accuracy"]), fontsize=7)
        for block, (marker, color, label) in BLOCK_STYLE.items():
            pts = sorted((m for m in models.values() if m["block"] == block), key=lambda m: m["sparsity"])
            if pts:
                ax.plot([100 * m["sparsity"] for m in pts], [100 * m["accuracy"] for m in pts], marker + "-",
                        color=color, label=f"{label}, width {pts[0]['width']:g}×")
        ax.set_xlabel("sparsity of the 1×1 layers (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "accuracy_sparsity.png")
        out.append(("Accuracy against sparsity (dotted: the dense models)", "figures/accuracy_sparsity.png"))
    if ks:
        shapes = ks["shapes"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for name, rows in shapes.items():
            s = [float(k[1:].replace("_", ".")) for k in rows]
            for ax, ref in ((axes[0], "loop"), (axes[1], "blas")):
                ax.plot(s, [r[f"speedup_csr_vs_{ref}"] for r in rows.values()], "o-", label=f"CSR {name}")
                ax.plot(s, [r[f"speedup_bsr4_vs_{ref}"] for r in rows.values()], "s--", label=f"1×4 BSR {name}")
        for ax, title in ((axes[0], "speed-up over the same-loop dense kernel"), (axes[1], "speed-up over BLAS sgemm")):
            ax.axhline(1.0, color="k", lw=0.6)
            ax.set_yscale("log")
            ax.set_xlabel("sparsity")
            ax.set_ylabel("speed-up (×)")
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
        plots.save(fig, figdir / "kernel_speedup.png")
        out.append(("Sparse 1×1 kernels against dense kernels (random matrices, 1 thread)", "figures/kernel_speedup.png"))
    return out
