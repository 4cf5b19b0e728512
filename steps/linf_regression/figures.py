"""linf_regression's report figures: realised ε against m (with SRHT's fitted slope), failure
rates with binomial intervals, the distribution of the error's concentration ρ and of ε at
the headline c, and the time to form SA against n."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from steps.core import plots
from steps.core.io import load_parquet
from steps.linf_regression.common import cell

STYLE = {"gaussian": ("C0", "o", "-"), "srht": ("C1", "s", "-"), "countsketch": ("C3", "^", "--"),
         "osnap_s2": ("C4", "v", "--"), "osnap_s4": ("C5", "<", "--"), "osnap_s8": ("C6", ">", "--"),
         "uniform": ("C7", "x", ":"), "leverage": ("C2", "D", ":")}


def _style(sk: str):
    return STYLE.get(sk, ("k", ".", "-"))


def _loglog(ax) -> None:
    """Log axes with plain tick labels (no overlapping 3×10² minor labels)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())


def _instances(linf: dict) -> list[str]:
    return [k for k in linf if k not in ("eps_target", "slopes", "dims")]


def _trials(results_dir: Path):
    import pandas as pd

    files = sorted((results_dir / "trials").glob("*.parquet"))
    return pd.concat([load_parquet(f, "trials table") for f in files], ignore_index=True) if files else None


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()

    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    linf = values.get("linf")
    if linf:
        insts = _instances(linf)
        hc = float(cfg.calibration.headline_c)
        # 1. realised ε vs m, log-log, per instance
        fig, axes = plt.subplots(1, len(insts), figsize=(4.6 * len(insts), 4), squeeze=False)
        for ax, inst in zip(axes[0], insts, strict=True):
            for sk, cells in linf[inst].items():
                col, mk, ls = _style(sk)
                pts = sorted((v["m"], v["p90_E_inf"]) for v in cells.values())
                ax.plot(*zip(*pts, strict=True), color=col, marker=mk, ls=ls, label=sk)
            fit = (linf.get("slopes", {}).get(inst) or {}).get("srht")
            if fit:
                ms = np.array(sorted({v["m"] for v in linf[inst]["srht"].values()}), dtype=float)
                ax.plot(ms, np.exp(fit["intercept"]) * ms ** fit["slope"], color="k", lw=0.8, label="SRHT fit")
                text = f"SRHT slope {fit['slope']:.2f} [{fit['ci_lo']:.2f}, {fit['ci_hi']:.2f}]"
                if fit.get("slope_fpc") is not None:
                    text += f"\n{fit['slope_fpc']:.2f} with (1 − m/n)^½ divided out"
                ax.text(0.03, 0.03, text, transform=ax.transAxes, fontsize=7, va="bottom")
            eps = linf.get("eps_target", {})
            tpts = sorted({v["m"]: eps[c] for c, v in reversed(linf[inst].get("gaussian", {}).items()) if c in eps}.items())
            if tpts:
                ax.plot(*zip(*tpts, strict=True), color="gray", ls="-.", lw=1, label="ε_target")
            _loglog(ax)
            ax.set_xlabel("sketch rows m")
            ax.set_title(inst)
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel("p90 of realised ε = √d‖x'−x*‖∞ / (‖r‖‖A†‖)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, bbox_to_anchor=(0.5, -0.06))
        fig.suptitle(f"Realised ε against m (p90 over trials; {cfg.scale}); theory: slope −1/2 for dense sketches")
        plots.save(fig, figdir / "eps_vs_m.png")
        out.append(("Realised ε (p90) against sketch rows m, per instance; SRHT's fitted slope", "figures/eps_vs_m.png"))

        # 2. failure rates with Clopper–Pearson intervals
        fig, axes = plt.subplots(1, len(insts), figsize=(4.6 * len(insts), 4), squeeze=False, sharey=True)
        for ax, inst in zip(axes[0], insts, strict=True):
            sks = list(linf[inst])
            for j, sk in enumerate(sks):
                col, mk, _ = _style(sk)
                cs = sorted(linf[inst][sk].values(), key=lambda v: v["m"])
                x = np.arange(len(cs)) + (j - len(sks) / 2) * 0.06
                r = np.array([v["fail_rate"] for v in cs])
                lo = r - np.array([v["fail_ci_lo"] for v in cs])
                hi = np.array([v["fail_ci_hi"] for v in cs]) - r
                ax.errorbar(x, r, yerr=[lo, hi], color=col, marker=mk, capsize=2, lw=1, label=sk)
            cs = sorted(linf[inst][sks[0]].items(), key=lambda kv: kv[1]["m"])
            ax.set_xticks(range(len(cs)), [f"{k}\nm={v['m']}" for k, v in cs], fontsize=7)
            ax.set_title(inst)
            ax.axhline(0.05, color="gray", lw=0.6, ls=":")
            ax.axhline(0.2, color="gray", lw=0.6, ls="--")
        axes[0][0].set_ylabel("P[realised ε > ε_target(c)] (95 % CI)")
        axes[0][-1].legend(fontsize=7)
        fig.suptitle("Failure rate of the ℓ∞ guarantee; dotted 0.05, dashed 0.2 (the claims' thresholds)")
        plots.save(fig, figdir / "fail_rate.png")
        out.append(("Failure rate P[ε > ε_target] per sketch and c, with exact binomial intervals", "figures/fail_rate.png"))

        # 3. distributions at the headline c: ρ and ε, per instance
        df = _trials(results_dir)
        if df is not None:
            sub = df[df.c == hc]
            if not sub.empty:
                fig, axes = plt.subplots(2, len(insts), figsize=(4.6 * len(insts), 7), squeeze=False)
                for k, inst in enumerate(insts):
                    g = sub[sub.instance == inst]
                    sks = [s for s in linf[inst] if s in set(g.sketch)]
                    data = [g[g.sketch == s].rho.dropna().to_numpy() for s in sks]
                    ax = axes[0][k]
                    ax.boxplot(data, whis=(5, 95), showfliers=True, flierprops={"markersize": 2})
                    ax.set_xticks(range(1, len(sks) + 1), sks, rotation=30, fontsize=7)
                    dim = linf.get("dims", {}).get(inst, {}).get("d")
                    if dim:
                        ax.axhline(math.sqrt(2 * math.log(dim)), color="C2", lw=0.8, ls="--", label="√(2 ln d): spread")
                        ax.axhline(math.sqrt(dim), color="C3", lw=0.8, ls="--", label="√d: one coordinate")
                    ax.set_title(f"{inst}: ρ = √d‖e‖∞/‖e‖₂, {cell(hc)}")
                    ax.legend(fontsize=6)
                    ax = axes[1][k]
                    for s in sks:
                        col, _, ls = _style(s)
                        e = np.sort(g[g.sketch == s].E_inf.to_numpy())
                        ax.plot(e, 1 - np.arange(len(e)) / len(e), color=col, ls=ls, label=s)
                    eps = linf.get("eps_target", {}).get(cell(hc))
                    if eps:
                        ax.axvline(eps, color="gray", ls="-.", lw=1, label="ε_target")
                    _loglog(ax)
                    ax.set_xlabel("realised ε")
                    ax.set_ylabel("P[ε > x]")
                    ax.legend(fontsize=6)
                fig.suptitle(f"Error concentration (top) and tail of realised ε (bottom) at {cell(hc)}")
                fig.tight_layout()
                plots.save(fig, figdir / "concentration.png")
                out.append((f"Concentration ρ and the tail of realised ε at {cell(hc)}", "figures/concentration.png"))

    timing = values.get("timing")
    if timing and timing.get("sweep"):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for sk, pts in timing["sweep"].items():
            col, mk, ls = _style(sk)
            xs = sorted((int(k[1:]), v) for k, v in pts.items())
            ax.plot(*zip(*xs, strict=True), color=col, marker=mk, ls=ls, label=sk)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (rows of A)")
        ax.set_ylabel("seconds to form SA (median)")
        ax.set_title(f"Time to form SA, d = {cfg.timing.d}, m = {cfg.timing.c} d ln n, {cfg.timing.blas_threads} BLAS thread(s)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        plots.save(fig, figdir / "timing.png")
        out.append(("Time to form SA against n, per sketch", "figures/timing.png"))
    return out

