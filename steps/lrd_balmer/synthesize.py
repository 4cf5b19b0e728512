"""Phase `synthesize`: merge the level populations of every chunk, then for every model the
transmitted AGN spectrum, its Balmer break (per covering fraction and dust A_V), the line-centre
optical depths and the Balmer absorption EWs. Writes levels.json and balmer.json (metrics),
grid.npz (every model, for the figures) and spectra.npz (the fiducial track's spectra).

    python -m steps.lrd_balmer.synthesize scale=mini io.atom=data/lrd_balmer/atomic.json \
        io.levels=data/lrd_balmer/levels io.results=results/lrd_balmer
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.io import load_npz, save_npz
from steps.core.progress import Progress, log
from steps.lrd_balmer import grid as gridlib
from steps.lrd_balmer import hydrogen as hy
from steps.lrd_balmer import occupation as oc
from steps.lrd_balmer import spectrum as sp
from steps.lrd_balmer.atomic import load_atom

KM = 1e5


def merge(levels_dir: Path, cfg: DictConfig, n: int) -> dict[str, np.ndarray]:
    """Every chunk's arrays in flat model order; an error names a missing or foreign chunk."""
    total = len(gridlib.models(cfg.grid))
    out = None
    seen = np.zeros(total, bool)
    for k in range(int(cfg.grid.chunks)):
        part = load_npz(levels_dir / f"chunk{k}.npz", f"level populations (chunk {k})")
        idx = part.pop("index")
        if part["pops"].shape[1] != n or len(idx) and idx.max() >= total:
            raise ArtifactError(f"{levels_dir}/chunk{k}.npz is from another grid or atom; rerun solve_levels")
        if out is None:
            out = {name: np.zeros((total, *a.shape[1:]), a.dtype) for name, a in part.items()}
        for name, a in part.items():
            out[name][idx] = a
        seen[idx] = True
    if not seen.all():
        raise ArtifactError(f"{levels_dir}: {int((~seen).sum())} models missing; rerun solve_levels")
    return out


def fiducial_track(cfg: DictConfig) -> list[int]:
    """Flat indices of the fiducial (T, N_H, U) models, in density order."""
    ax = gridlib.axes(cfg.grid)
    f = cfg.fiducial
    try:
        it, ic, iu = (int(np.flatnonzero(np.isclose(ax[k], float(v)))[0]) for k, v in (("t", f.t), ("col", f.col), ("u", f.u)))
    except IndexError:
        raise ArtifactError("fiducial (t, col, u) is not on the grid; fix params fiducial or grid") from None
    allm = gridlib.models(cfg.grid)
    return [allm.index((a, it, ic, iu)) for a in range(len(ax["log_nh"]))]


# balmer.json values that are arithmetic of the atom and b, not findings (metrics.write accounting):
# tau0(Hα)/tau_BaC = kappa_Hα(b)/sigma_2 for every slab, so tau_BaC > 0.5 fixes tau0(Hα) > 0.5 x it.
ACCOUNTING = ("tau0_ha_min_where_bac_thick", "tau_ha_over_tau_bac")


def occupation_diagnostics(atom: hy.Atom, lv: dict, cfg: DictConfig, track: list[int], charged: str) -> dict:
    """Where the Balmer series ends in each model (whatever the spectrum model): the Inglis-Teller
    n and the highest u with w_u/w_2 >= 0.5 on the fiducial track, and the smallest w_n of the
    model atom's levels over the grid (the rate equations take w_n = 1 for them)."""
    ax, allm = gridlib.axes(cfg.grid), gridlib.models(cfg.grid)
    us = np.arange(2, 2001)
    keys = [gridlib.key(x) for x in ax["log_nh"]]
    u_half, n_it, w_atom = {}, {}, []
    for i, m in enumerate(allm):
        n_e, n_h0, t = float(lv["n_e"][i]), float(lv["pops"][i].sum()), float(ax["t"][m[1]])
        w_atom.append(float(oc.w(np.arange(1, atom.n + 1), n_e, n_h0, t, charged).min()))
        if i in track:
            w = oc.w(us, n_e, n_h0, t, charged)
            u_half[keys[m[0]]] = int(us[w / w[0] >= 0.5].max())
            n_it[keys[m[0]]] = float(oc.inglis_teller_n(n_e))
    return {"u_w_half": u_half, "n_inglis_teller": n_it, "w_atom_min": min(w_atom)}


def measure(cfg: DictConfig, atom: hy.Atom, lv: dict, model: sp.Model) -> tuple[dict, dict]:
    """Every model's transmitted spectrum under the spectrum `model`: (the balmer metrics, arrays
    for grid.npz and spectra.npz)."""
    ax = gridlib.axes(cfg.grid)
    allm = gridlib.models(cfg.grid)
    s = cfg.spectrum
    lam = np.geomspace(float(s.lam_min), float(s.lam_max), int(s.n_lam))
    nu = hy.C_CGS / (lam * sp.ANGSTROM)
    f_agn = nu ** float(cfg.gas.alpha)
    covers, avs = [float(c) for c in s.covering], [float(a) for a in s.av]
    dust = {av: sp.dust_factor(lam, av, s.dust_law) for av in avs}
    b, v_out = float(cfg.gas.b_kms) * KM, float(s.v_out_kms) * KM
    opacity = sp.Opacity(atom, nu, b, v_out, model)
    n_models = len(allm)
    brk = np.zeros((n_models, len(covers), len(avs)))
    tau_bac = np.zeros(n_models)
    ew = {u: np.zeros(n_models) for u in sp.balmer_lines(atom)}
    track = fiducial_track(cfg)
    spectra = np.zeros((len(track), len(avs), len(lam)))
    sig2 = float(atom.sigma(1, atom.nu_edge[1]))
    bar = Progress(n_models, "spectra", every_s=float(cfg.progress.every_s))
    for i, (a, it, c, _) in enumerate(allm):
        length = ax["col"][c] / 10.0 ** ax["log_nh"][a]
        cols = lv["pops"][i] * length
        tau_bac[i] = cols[1] * sig2
        tbf, tl = opacity.tau(cols, float(lv["n_e"][i]), float(lv["pops"][i].sum()), float(ax["t"][it]))
        trans = np.exp(-tbf - tl)
        for ic, cf in enumerate(covers):
            base = f_agn * ((1.0 - cf) + cf * trans)
            for ia, av in enumerate(avs):
                brk[i, ic, ia] = sp.break_strength(lam, base * dust[av], s.break_blue, s.break_red)
        cont = np.exp(-tbf)
        for u in ew:
            ew[u][i] = sp.equivalent_width(lam, trans, cont, sp.line_centre(atom, u, v_out), float(s.ew_window_kms))
        if i in track:
            for ia, av in enumerate(avs):
                spectra[track.index(i), ia] = f_agn * trans * dust[av]
        bar.update(1)
    bar.close()

    b_agn = sp.break_strength(lam, f_agn, s.break_blue, s.break_red)
    b_dust = sp.break_strength(lam, f_agn * dust[max(avs)], s.break_blue, s.break_red)
    tau0_ha = lv["tau_lines"][:, 1, 2] if atom.n >= 3 else np.zeros(n_models)
    ic_f = covers.index(float(cfg.fiducial.covering))
    ia_f = avs.index(float(cfg.fiducial.av))
    keys = [gridlib.key(x) for x in ax["log_nh"]]
    fb = brk[track, ic_f, ia_f]
    above = [float(ax["log_nh"][j]) for j, v in enumerate(fb) if v > 1.3 * b_agn]
    thick = [float(ax["log_nh"][j]) for j, i in enumerate(track) if tau0_ha[i] > 1.0]
    bac_thick = tau_bac > 0.5
    by_key = lambda arr: dict(zip(keys, (float(arr[i]) for i in track), strict=True))  # noqa: E731
    balmer = {
        "B_agn_only": b_agn,
        "B_dust_only": b_dust,
        "fiducial": {
            "B": dict(zip(keys, map(float, fb), strict=True)),
            "B_dust": dict(zip(keys, map(float, brk[track, ic_f, len(avs) - 1]), strict=True)),
            "B_covering": {f"cf{c:.1f}".replace(".", "_"): dict(zip(keys, map(float, brk[track, ic, ia_f]), strict=True))
                           for ic, c in enumerate(covers)},
            "B_min_increment": float(np.min(np.diff(fb))) if len(fb) > 1 else 0.0,
            "lgn_break": above[0] if above else None,
            "lgn_ha_thick": thick[0] if thick else None,
            "tau_bac": by_key(tau_bac),
            "tau0_ha": by_key(tau0_ha),
            "ew_abs": {f"u{u}": by_key(ew[u]) for u in ew},
        },
        "occupation": occupation_diagnostics(atom, lv, cfg, track, model.charged),
        "tau0_ha_min_where_bac_thick": float(tau0_ha[bac_thick].min()) if bac_thick.any() else None,
        "tau_ha_over_tau_bac": float(hy.line_kappa(atom, b)[1, 2] / sig2) if atom.n >= 3 else None,
        "n_models_bac_thick": int(bac_thick.sum()),
    }
    arrays = {"brk": brk, "tau_bac": tau_bac, "tau0_ha": tau0_ha, "track": track, "covers": covers, "avs": avs,
              "b_agn": b_agn, "lam": lam, "f_agn": f_agn, "spectra": spectra}
    return balmer, arrays


def level_metrics(atom: hy.Atom, lv: dict, cfg: DictConfig) -> tuple[dict, dict]:
    """levels.json values and the population arrays grid.npz keeps."""
    ax, allm = gridlib.axes(cfg.grid), gridlib.models(cfg.grid)
    pops = lv["pops"]
    boltz = np.array([atom.g[1] / atom.g[0] * np.exp(-(atom.chi[0] - atom.chi[1]) / (hy.K_CGS * ax["t"][m[1]])) for m in allm])
    x2_ratio = pops[:, 1] / pops[:, 0] / boltz
    b2 = np.array([pops[i, 1] / (lv["n_e"][i] * lv["n_p"][i] * atom.saha_phi(ax["t"][m[1]])[1]) for i, m in enumerate(allm)])
    track = fiducial_track(cfg)
    keys = [gridlib.key(x) for x in ax["log_nh"]]
    by_key = lambda arr: dict(zip(keys, (float(arr[i]) for i in track), strict=True))  # noqa: E731
    n_h = 10.0 ** ax["log_nh"][[m[0] for m in allm]]
    levels = {
        "fiducial": {"x2_ratio": by_key(x2_ratio), "b2": by_key(b2), "ne_over_nh": by_key(lv["n_e"] / n_h),
                     "x2": by_key(pops[:, 1] / n_h)},
        "converged_fraction": float(lv["converged"].mean()),
        "max_iterations": int(lv["iterations"].max()),
        "max_change": float(lv["change"].max()),
    }
    return levels, {"x2_ratio": x2_ratio, "b2": b2}


def main(cfg: DictConfig) -> dict:
    atom_path, levels_dir, results = need_io(cfg, "atom", "levels", "results")
    results = Path(results)
    t0 = time.monotonic()
    atom = hy.Atom(load_atom(atom_path))
    lv = merge(Path(levels_dir), cfg, atom.n)
    ax = gridlib.axes(cfg.grid)
    balmer, arr = measure(cfg, atom, lv, sp.Model.of(cfg.spectrum))
    levels, pop = level_metrics(atom, lv, cfg)
    save_npz(results / "grid.npz", log_nh=ax["log_nh"], t=ax["t"], col=ax["col"], u=ax["u"],
             model=np.asarray(gridlib.models(cfg.grid)), pops=lv["pops"], n_e=lv["n_e"], n_p=lv["n_p"],
             x2_ratio=pop["x2_ratio"], b2=pop["b2"], tau0_ha=arr["tau0_ha"], tau_bac=arr["tau_bac"], brk=arr["brk"],
             covering=np.asarray(arr["covers"]), av=np.asarray(arr["avs"]), b_agn=np.asarray(arr["b_agn"]),
             track=np.asarray(arr["track"]))
    save_npz(results / "spectra.npz", lam=arr["lam"], f_nu=arr["spectra"], f_agn=arr["f_agn"], log_nh=ax["log_nh"],
             av=np.asarray(arr["avs"]))
    wall = time.monotonic() - t0
    metrics.write(results / "levels.json", cfg, "levels", "hydrogen level populations: (n2/n1)/(n2/n1)_LTE, departure b2, n_e/n_H",
                  levels, wall, "cpu")
    metrics.write(results / "balmer.json", cfg, "balmer", "Balmer break B (F_nu windows), tau_BaC(3646), tau0(Hα), absorption EWs (Å)",
                  balmer, wall, "cpu", extra={"model": asdict(sp.Model.of(cfg.spectrum))}, accounting=ACCOUNTING)
    log.info(f"{len(lv['pops'])} models; fiducial B {', '.join(f'{k}={v:.3f}' for k, v in balmer['fiducial']['B'].items())}; "
             f"B_AGN {balmer['B_agn_only']:.3f}")
    return balmer


if __name__ == "__main__":
    run(main, "lrd_balmer", "synthesize")
