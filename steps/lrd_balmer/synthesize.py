"""Phase `synthesize`: merge the level populations of every chunk, then for every model the
transmitted AGN spectrum, its Balmer break (per covering fraction and dust A_V), the line-centre
optical depths and the Balmer absorption EWs. Writes levels.json and balmer.json (metrics),
grid.npz (every model, for the figures) and spectra.npz (the fiducial track's spectra).

    python -m steps.lrd_balmer.synthesize scale=mini io.atom=data/lrd_balmer/atomic.json \
        io.levels=data/lrd_balmer/levels io.results=results/lrd_balmer
"""

from __future__ import annotations

import time
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


def main(cfg: DictConfig) -> dict:
    atom_path, levels_dir, results = need_io(cfg, "atom", "levels", "results")
    results = Path(results)
    t0 = time.monotonic()
    atom = hy.Atom(load_atom(atom_path))
    lv = merge(Path(levels_dir), cfg, atom.n)
    ax = gridlib.axes(cfg.grid)
    allm = gridlib.models(cfg.grid)
    s = cfg.spectrum
    lam = np.geomspace(float(s.lam_min), float(s.lam_max), int(s.n_lam))
    nu = hy.C_CGS / (lam * sp.ANGSTROM)
    f_agn = nu ** float(cfg.gas.alpha)
    covers, avs = [float(c) for c in s.covering], [float(a) for a in s.av]
    dust = {av: sp.dust_factor(lam, av, s.dust_law) for av in avs}
    b, v_out = float(cfg.gas.b_kms) * KM, float(s.v_out_kms) * KM
    n_models = len(allm)
    brk = np.zeros((n_models, len(covers), len(avs)))
    tau_bac = np.zeros(n_models)
    ew = {u: np.zeros(n_models) for u in sp.balmer_lines(atom)}
    track = fiducial_track(cfg)
    spectra = np.zeros((len(track), len(avs), len(lam)))
    sig2 = float(atom.sigma(1, atom.nu_edge[1]))
    bar = Progress(n_models, "spectra", every_s=float(cfg.progress.every_s))
    for i, (a, _, c, _) in enumerate(allm):
        length = ax["col"][c] / 10.0 ** ax["log_nh"][a]
        cols = lv["pops"][i] * length
        tau_bac[i] = cols[1] * sig2
        tbf = sp.tau_bf(atom, cols, nu)
        tl = sp.tau_lines(atom, cols, nu, b, v_out, int(s.balmer_series_n))
        trans = np.exp(-tbf - sum(tl.values()))
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
    pops = lv["pops"]
    boltz = np.array([atom.g[1] / atom.g[0] * np.exp(-(atom.chi[0] - atom.chi[1]) / (hy.K_CGS * ax["t"][m[1]])) for m in allm])
    x2_ratio = pops[:, 1] / pops[:, 0] / boltz
    b2 = np.array([pops[i, 1] / (lv["n_e"][i] * lv["n_p"][i] * atom.saha_phi(ax["t"][m[1]])[1]) for i, m in enumerate(allm)])
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
        "tau0_ha_min_where_bac_thick": float(tau0_ha[bac_thick].min()) if bac_thick.any() else None,
        "n_models_bac_thick": int(bac_thick.sum()),
    }
    levels = {
        "fiducial": {"x2_ratio": by_key(x2_ratio), "b2": by_key(b2), "ne_over_nh": by_key(lv["n_e"] / 10.0 ** ax["log_nh"][[m[0] for m in allm]]),
                     "x2": by_key(pops[:, 1] / 10.0 ** ax["log_nh"][[m[0] for m in allm]])},
        "converged_fraction": float(lv["converged"].mean()),
        "max_iterations": int(lv["iterations"].max()),
        "max_change": float(lv["change"].max()),
    }
    save_npz(results / "grid.npz", log_nh=ax["log_nh"], t=ax["t"], col=ax["col"], u=ax["u"],
             model=np.asarray(allm), pops=pops, n_e=lv["n_e"], n_p=lv["n_p"], x2_ratio=x2_ratio, b2=b2,
             tau0_ha=tau0_ha, tau_bac=tau_bac, brk=brk, covering=np.asarray(covers), av=np.asarray(avs),
             b_agn=np.asarray(b_agn), track=np.asarray(track))
    save_npz(results / "spectra.npz", lam=lam, f_nu=spectra, f_agn=f_agn, log_nh=ax["log_nh"], av=np.asarray(avs))
    wall = time.monotonic() - t0
    metrics.write(results / "levels.json", cfg, "levels", "hydrogen level populations: (n2/n1)/(n2/n1)_LTE, departure b2, n_e/n_H",
                  levels, wall, "cpu")
    metrics.write(results / "balmer.json", cfg, "balmer", "Balmer break B (F_nu windows), tau_BaC(3646), tau0(Hα), absorption EWs (Å)",
                  balmer, wall, "cpu")
    log.info(f"{n_models} models; fiducial B {', '.join(f'{k}={v:.3f}' for k, v in balmer['fiducial']['B'].items())}; "
             f"B_AGN {b_agn:.3f}")
    return balmer


if __name__ == "__main__":
    run(main, "lrd_balmer", "synthesize")
