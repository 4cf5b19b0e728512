"""rsb_dense's report figures: retrieval curves m(α) per N beside the RS theory, the finite-size
extrapolation of α_c(N), the crosstalk-noise ratio, and the supra-linear storage test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots

THEORY_KEY = {"p2": [("p2_ags", "AGS RS (hard + soft)"), ("p2_hardonly", "hard-only RS")]}


def _systems(cap: dict) -> list[str]:
    return sorted(cap, key=lambda s: int(s[1:]))


def _curves(ax, name: str, cap: dict, theory: dict | None) -> None:
    import matplotlib.pyplot as plt

    sizes = sorted(cap["curves"], key=lambda k: int(k[1:]))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for c, key in zip(colors, sizes, strict=True):
        cur = cap["curves"][key]
        ax.errorbar(cur["alpha"], cur["m"], yerr=cur["m_err"], marker="o", ms=3, capsize=2, color=c, label=f"MC N={key[1:]}")
    for t, cur in (cap.get("metropolis") or {}).items():
        for key, mc in cur.items():
            ax.plot(mc["alpha"], mc["m"], ls=":", marker="x", ms=3, color="gray", label=f"Metropolis {t.replace('_', '.')} N={key[1:]}")
    if theory:
        lo, hi = ax.get_xlim()
        for tkey, label in THEORY_KEY.get(name, [(name, "hard-only RS, T = 0")]):
            cur = theory["curves"].get(tkey)
            if cur:
                a = np.array(cur["alpha"])
                keep = a <= hi
                ax.plot(a[keep], np.array(cur["m"])[keep], lw=2, label=label)
        for tname, tcur in theory.get("finite_t", {}).items():
            cur = tcur.get(name)
            if cur:
                a, m = np.array(cur["alpha"]), np.array([np.nan if v is None else v for v in cur["m"]])
                keep = a <= hi
                ax.plot(a[keep], m[keep], lw=1, ls="--", label=f"RS {tname.replace('_', '.')}")
    for key, ls in (("m05", "-."), ("spinodal", ":")):
        ax.axhline(cap[key]["threshold"], color="k", lw=0.6, ls=ls)
    ax.set_xlabel("α = K / (N-1)_{P-1}")
    ax.set_ylabel("mean final overlap m")
    ax.set_title(f"P = {name[1:]}")
    ax.legend(fontsize=6)


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()

    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    cap, theory, noise, sl = (values.get(k) for k in ("capacity", "theory", "noise", "supralinear"))
    if cap:
        names = _systems(cap)
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4))
        for ax, name in zip(np.atleast_1d(axes), names, strict=True):
            _curves(ax, name, cap[name], theory)
        fig.suptitle(f"Retrieval from 5 % noise: final overlap against load ({cfg.scale}; lines: thresholds 0.5 and m_c)")
        plots.save(fig, figdir / "retrieval_curves.png")
        out.append(("Final overlap m(α) per N (Monte Carlo, mean ± s.e. over draws) and the RS theory", "figures/retrieval_curves.png"))

        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4))
        for ax, name in zip(np.atleast_1d(axes), names, strict=True):
            omega = float(cfg.extrapolate.exponent) if "extrapolate" in cfg else 1.0
            for key, marker in (("m05", "o"), ("spinodal", "s")):
                est = cap[name][key]
                pts = [(int(k[1:]), v["alpha_c"], v["err"] or 0.0) for k, v in est["by_n"].items() if v["alpha_c"] is not None]
                if not pts:
                    continue
                n, a, e = map(np.array, zip(*pts, strict=True))
                x = n.astype(float) ** (-omega)
                ax.errorbar(x, a, yerr=e, marker=marker, ls="none", capsize=3, label=f"α_c(N), m = {est['threshold']:.3g}")
                if est.get("alpha_inf") is not None:
                    xs = np.linspace(0, x.max() * 1.05, 20)
                    ax.plot(xs, est["alpha_inf"] + est["slope"] * xs, lw=1)
                    ax.errorbar([0], [est["alpha_inf"]], yerr=[est["alpha_inf_err"]], marker="*", ms=10, capsize=3,
                                label=f"α_∞ = {est['alpha_inf']:.4g} ± {est['alpha_inf_err']:.2g}")
            if theory:
                ax.axhline(theory["alpha_c"]["hardonly"].get(name, np.nan) if name != "p2" else theory["alpha_c"]["ags"]["p2"],
                           color="r", lw=1, ls="--", label="RS theory" + (" (AGS)" if name == "p2" else " (hard only)"))
            ax.set_xlabel(f"N^-{omega:g}")
            ax.set_ylabel("α_c(N)")
            ax.set_title(f"P = {name[1:]}: finite-size extrapolation")
            ax.legend(fontsize=6)
        plots.save(fig, figdir / "extrapolation.png")
        out.append(("Capacity α_c(N) against 1/N, the weighted fit and its N → ∞ limit, beside the RS theory", "figures/extrapolation.png"))
    if noise:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in _systems(noise):
            r = noise[name]["ratio_by_n"]
            pts = [(int(k[1:]), v) for k, v in r.items() if v is not None]
            color = f"C{int(name[1:]) // 2 - 1}"
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=color, label=f"P = {name[1:]} at α = {noise[name]['alpha']:.3g} (fixed point)")
            c = noise[name]["control_by_n"]
            ax.plot([int(k[1:]) for k in c], list(c.values()), marker="x", ls=":", color=color,
                    label=f"P = {name[1:]} at the pattern (control)")
        if theory:
            for rec in theory.get("ags_reaction", {}).values():
                if rec.get("r"):
                    ax.axhline(rec["r"], color="r", lw=0.8, ls="--", label=f"AGS r(α = {rec['alpha']:g}) = {rec['r']:.3f}")
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("crosstalk variance / bare value")
        ax.set_title("Reaction term: crosstalk noise at the retrieval state")
        ax.legend(fontsize=6)
        plots.save(fig, figdir / "noise.png")
        out.append(("Crosstalk variance of the local fields over its bare value (1: no reaction term)", "figures/noise.png"))
    ob = (theory or {}).get("onersb")
    if ob:
        c = ob["curves"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for key, label in (("f_rs", "RS spin glass"), ("f_1rsb", "1RSB spin glass"), ("f_para", "paramagnet")):
            a1.plot(c["t"], c[key], marker="o", ms=3, label=label)
        a1.set_xlabel("T")
        a1.set_ylabel("free energy f")
        a1.legend(fontsize=7)
        for key, label in (("s_rs", "RS"), ("s_1rsb", "1RSB")):
            a2.plot(c["t"], c[key], marker="o", ms=3, label=label)
        a2.axhline(0, color="k", lw=0.6)
        a2.set_xlabel("T")
        a2.set_ylabel("entropy s")
        a2.legend(fontsize=7)
        fig.suptitle(f"Spin-glass state, P = {ob['p']}, α = {ob['alpha']:g}: RS vs 1RSB (hard spin glass, J² = P!α/2)")
        plots.save(fig, figdir / "onersb.png")
        out.append(("RS against 1RSB for the spin-glass state: free energy and entropy against T", "figures/onersb.png"))
    if sl:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in _systems(sl):
            for arm, label in (("fixed", f"fixed α = {sl[name]['fixed']['alpha']:.3g}"), ("linear", f"K = {sl[name]['linear']['kappa']:g} N")):
                m = sl[name][arm]["m"]
                ax.plot([int(k[1:]) for k in m], list(m.values()), marker="o", label=f"P = {name[1:]}, {label}")
        ax.set_xlabel("N")
        ax.set_ylabel("mean final overlap m")
        ax.set_title("Storage scales as K ∝ N^{P-1}")
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "supralinear.png")
        out.append(("Overlap against N at fixed α (K ∝ N³) and at a load linear in N", "figures/supralinear.png"))
    return out
