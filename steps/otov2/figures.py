"""otov2's report figures: the accuracy frontier of every arm against group sparsity, FLOPs
and measured latency (compact networks), with the dense reference."""

from __future__ import annotations

from pathlib import Path

from steps.core import plots

STYLE = {"dense": ("k", "*", "dense reference"), "dhspg": ("C0", "o", "OTOv2 (DHSPG, no fine-tune)"),
         "lasso": ("C1", "s", "group lasso + threshold + fine-tune"), "random": ("C3", "^", "random structured"),
         "lasso_matched": ("C1", "D", "lasso, pruned to DHSPG's achieved sparsity"),
         "random_matched": ("C3", "v", "random, pruned to DHSPG's achieved sparsity")}


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    acc = values.get("accuracy")
    if not acc:
        return []
    plt = plots.pyplot()
    axes_spec = [("group_sparsity", "achieved group sparsity"), ("mflops", "MFLOPs per image (compact)"),
                 ("latency_ms", "latency per image, ms (1 thread, compact)")]
    axes_spec = [a for a in axes_spec if any(r.get(a[0]) is not None for r in acc["runs"].values())]
    # smoke/mini: {arm: {s: row}}; full: {net: {arm: {s: row}}}, one row of panels per net
    panels = [("", acc)] if any(a in acc for a in STYLE) else [
        (f"{k}: ", v) for k, v in acc.items() if isinstance(v, dict) and any(a in v for a in STYLE)]
    fig, axes = plt.subplots(len(panels), len(axes_spec), figsize=(5 * len(axes_spec), 4 * len(panels)), squeeze=False)
    for (title, by_arm), (ax, (key, label)) in ((p, a) for i, p in enumerate(panels) for a in zip(axes[i], axes_spec, strict=True)):
        ax.set_title(title.rstrip(": "), fontsize=9)
        for arm, (color, marker, name) in STYLE.items():
            rows = sorted(by_arm.get(arm, {}).values(), key=lambda r: r["target_sparsity"])
            pts = [(r[key], r["acc"]) for r in rows if r.get(key) is not None]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, color=color, marker=marker, ms=8, lw=1, label=name)
            for r in rows:
                if arm != "dense" and r.get(key) is not None:
                    ax.annotate(f"{r['target_sparsity']:.3g}", (r[key], r["acc"]), fontsize=7,
                                textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"otov2 ({cfg.scale}): accuracy of the compact networks (labels: target group sparsity; matched arms: DHSPG's achieved)")
    if len(panels) > 1:
        fig.tight_layout(rect=(0, 0, 1, 0.96))
    plots.save(fig, results_dir / "figures" / "frontier.png")
    return [("Test accuracy against achieved group sparsity, FLOPs and measured latency of the compact networks, "
             "every arm at each target sparsity", "figures/frontier.png")]
