"""Report figures: Balmer break against density (the paper's central result, its 1e9-1e11 cm^-3
range shaded), n=2 against its Boltzmann value, the transmitted spectra, the optical depths, and
the break under each spectrum model the claims' history compares with where the series dissolves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots
from steps.core.io import load_npz


def _label(g, i) -> str:
    _, it, ic, iu = g["model"][i]
    return f"T={g['t'][it]:.0f} K, N_H=1e{np.log10(g['col'][ic]):.0f}, U=1e{np.log10(g['u'][iu]):.0f}"


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()

    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    if not (results_dir / "grid.npz").exists():
        return out
    g = load_npz(results_dir / "grid.npz", "model grid")
    track = list(g["track"])
    x = g["log_nh"]
    covers, avs = list(g["covering"]), list(g["av"])
    ic = covers.index(float(cfg.fiducial.covering)) if float(cfg.fiducial.covering) in covers else len(covers) - 1
    ia = avs.index(float(cfg.fiducial.av)) if float(cfg.fiducial.av) in avs else 0
    models = g["model"]
    tracks: dict[tuple, list[int]] = {}
    for i, m in enumerate(models):
        tracks.setdefault(tuple(m[1:]), []).append(i)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.axvspan(9, 11, color="C1", alpha=0.12, label="paper: break from n_H ~ 1e9-1e11")
    for idx in tracks.values():
        if idx != track:
            ax.plot(x, g["brk"][idx, ic, ia], color="0.7", lw=0.8)
    ax.plot(x, g["brk"][track, ic, ia], "o-", color="C0", label=f"fiducial: {_label(g, track[0])}")
    for c, cf in enumerate(covers):
        if c != ic:
            ax.plot(x, g["brk"][track, c, ia], ":", label=f"fiducial, C_f = {cf:g}")
    if len(avs) > 1:
        ax.plot(x, g["brk"][track, ic, len(avs) - 1], "s--", ms=3, color="C3", label=f"fiducial, A_V = {avs[-1]:g} (Calzetti)")
    ax.axhline(float(g["b_agn"]), color="k", lw=0.8, ls="--", label="AGN continuum alone (f_nu ∝ nu^-0.5)")
    ax.set_yscale("log")
    ax.set_xlabel("log10 n_H (cm^-3)")
    ax.set_ylabel("Balmer break <F_nu>4000-4100 / <F_nu>3620-3720")
    ax.set_title(f"Balmer break vs gas density ({cfg.scale}); grey: other T, N_H, U", fontsize=9)
    ax.legend(fontsize=7)
    plots.save(fig, figdir / "break_vs_density.png")
    out.append(("Balmer break against gas density (grey: the other T, N_H, U of the grid)", "figures/break_vs_density.png"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for _, idx in sorted(tracks.items()):
        ls = "-" if idx == track else "--"
        if g["model"][idx[0]][2] != g["model"][track[0]][2] or g["model"][idx[0]][3] != g["model"][track[0]][3]:
            continue  # same N_H and U as the fiducial: vary T only
        axes[0].plot(x, g["x2_ratio"][idx], ls, marker="o", ms=3, label=_label(g, idx[0]))
        axes[1].plot(x, g["n_e"][idx] / 10.0**x, ls, marker="o", ms=3, label=_label(g, idx[0]))
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].axvspan(9, 11, color="C1", alpha=0.12)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("(n2/n1) / (n2/n1)_LTE")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("n_e / n_H")
    for a in axes:
        a.set_xlabel("log10 n_H (cm^-3)")
        a.legend(fontsize=7)
    fig.suptitle("n = 2 against its Boltzmann value (1 = LTE excitation), and ionisation", fontsize=9)
    plots.save(fig, figdir / "n2_vs_density.png")
    out.append(("n = 2 population against its LTE (Boltzmann) value, and the electron fraction", "figures/n2_vs_density.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(x, g["tau_bac"][track], "o-", label="tau_BaC at 3646 Å = N_2 sigma_2")
    ax.plot(x, g["tau0_ha"][track], "s-", label="tau_0(Hα), line centre")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("log10 n_H (cm^-3)")
    ax.set_ylabel("optical depth through the slab")
    ax.set_title(f"Optical depths, fiducial track ({_label(g, track[0])})", fontsize=9)
    ax.legend(fontsize=8)
    plots.save(fig, figdir / "optical_depths.png")
    out.append(("Balmer-continuum and Hα optical depths along the fiducial track", "figures/optical_depths.png"))

    if (results_dir / "spectra.npz").exists():
        s = load_npz(results_dir / "spectra.npz", "spectra")
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
        pick = np.unique(np.linspace(0, len(s["log_nh"]) - 1, min(5, len(s["log_nh"]))).round().astype(int))
        ref = s["f_agn"][-1]
        for ax, (lo, hi) in zip(axes, ((s["lam"][0], s["lam"][-1]), (3500.0, 4200.0)), strict=True):
            for j in pick:
                ax.plot(s["lam"], s["f_nu"][j, 0] / ref, lw=0.8, label=f"n_H = 1e{s['log_nh'][j]:g}")
            ax.plot(s["lam"], s["f_agn"] / ref, "k--", lw=0.8, label="AGN continuum")
            for wlo, whi in (cfg.spectrum.break_blue, cfg.spectrum.break_red):
                ax.axvspan(wlo, whi, color="0.9")
            ax.set_xlim(lo, hi)
            ax.set_yscale("log")
            ax.set_ylim(1e-3, 2)
            ax.set_xlabel("rest wavelength (Å)")
        axes[0].set_ylabel("F_nu / F_nu,AGN(7000 Å)")
        axes[0].legend(fontsize=7)
        axes[1].set_title("zoom: the Balmer edge and the series' lines", fontsize=9)
        fig.suptitle("Transmitted spectra, fiducial track, C_f = 1, no dust (grey: break windows)", fontsize=9)
        plots.save(fig, figdir / "spectra.png")
        out.append(("Transmitted AGN spectra at several densities", "figures/spectra.png"))
    if "balmer" in values:
        out.append(_models_figure(plt, cfg, values, x, figdir))
    return out


def _models_figure(plt, cfg, values: dict, x: np.ndarray, figdir: Path) -> tuple[str, str]:
    """The fiducial break under each spectrum model the claims' history compares (earlier_models,
    recomputed from the same populations), and where the Balmer series ends (occupation
    probabilities) against the u = 40 cut of the first fix."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for name, style in [(f"balmer_{m}", "--") for m in cfg.earlier_models] + [("balmer", "o-")]:
        if name in values:
            b = values[name]["fiducial"]["B"]
            label = name.removeprefix("balmer_") if name != "balmer" else "current (occupation probabilities)"
            axes[0].plot(x, [b[k] for k in b], style, ms=3, label=label)
    axes[0].axhline(1.3 * values["balmer"]["B_agn_only"], color="k", lw=0.8, ls=":", label="1.3 B_AGN")
    axes[0].axvspan(9, 11, color="C1", alpha=0.12)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("Balmer break B, fiducial track")
    occ = values["balmer"].get("occupation")
    if occ:
        axes[1].plot(x, list(occ["u_w_half"].values()), "o-", ms=3, label="highest u with w_u/w_2 >= 1/2")
        axes[1].plot(x, list(occ["n_inglis_teller"].values()), "--", label="Inglis-Teller n (from n_e)")
        axes[1].axhline(40, color="k", lw=0.8, ls=":", label="u = 40 (the first fix's cut)")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("upper level u")
    for a in axes:
        a.set_xlabel("log10 n_H (cm^-3)")
        a.legend(fontsize=7)
    fig.suptitle("The spectrum models behind the claims (left) and where the Balmer series dissolves (right)", fontsize=9)
    plots.save(fig, figdir / "spectrum_models.png")
    return ("Fiducial Balmer break under each spectrum model of the claims' history; the end of the Balmer series",
            "figures/spectrum_models.png")
