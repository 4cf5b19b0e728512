"""Phase `extrapolate`: from the Monte Carlo jobs to capacities in the thermodynamic limit.

* α_c(N): where the mean final overlap m(α) crosses a threshold, linearly interpolated between
  grid loads; its error bar from a bootstrap over the draws. Two thresholds: the spec's 0.5, and
  the overlap at which the RS retrieval state disappears, m_c(P) (theory), see base.yaml.
* α_∞: weighted least-squares fit α_c(N) = α_∞ + b N^{-ω} (ω = extrapolate.exponent), error from
  the fit covariance, inflated by √(χ²/dof) when the points scatter more than their errors.
* crosstalk noise at the retrieval state over its bare (non-reaction) value, per N;
* supra-linear storage: the overlap at a fixed α = K/(N-1)_{P-1} against N, and at K = κ N.

    python -m steps.rsb_dense.extrapolate scale=mini io.mc=data/rsb_dense/mc io.results=results/rsb_dense
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.config import config_hash
from steps.core.errors import ArtifactError
from steps.core.io import read_json
from steps.core.progress import log


def crossing(alphas: np.ndarray, m: np.ndarray, threshold: float) -> float | None:
    """The first α where m(α) falls below `threshold`, interpolated; None when the crossing is
    outside the grid (m never falls below it, or is below it already at the first load)."""
    below = np.nonzero(m < threshold)[0]
    if len(below) == 0 or below[0] == 0:
        return None
    j = int(below[0])
    a0, a1, m0, m1 = alphas[j - 1], alphas[j], m[j - 1], m[j]
    return float(a0 + (m0 - threshold) * (a1 - a0) / (m0 - m1))


def bootstrap_crossing(alphas: np.ndarray, m_draws: np.ndarray, threshold: float, n_boot: int, seed: int) -> dict:
    """α_c from the mean over draws (m_draws: loads × draws) and its bootstrap std."""
    est = crossing(alphas, m_draws.mean(1), threshold)
    rng = np.random.default_rng(seed)
    r = m_draws.shape[1]
    boots = [crossing(alphas, m_draws[:, rng.integers(0, r, r)].mean(1), threshold) for _ in range(n_boot)]
    finite = [b for b in boots if b is not None]
    return {"alpha_c": est, "err": float(np.std(finite)) if len(finite) > 1 else None,
            "crossed_share": len(finite) / max(1, n_boot)}


def fit_limit(ns: list[int], ac: list[float], err: list[float], exponent: float, err_floor: float) -> dict:
    """Weighted fit α_c(N) = α_∞ + b N^{-ω}; α_∞ with its standard error."""
    x = np.asarray(ns, float) ** (-exponent)
    y = np.asarray(ac, float)
    s = np.maximum(np.asarray(err, float), err_floor)
    design = np.stack([np.ones_like(x), x], 1)
    w = 1.0 / s**2
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    coef = cov @ design.T @ (w * y)
    dof = len(y) - 2
    chi2 = float(np.sum(w * (y - design @ coef) ** 2))
    inflate = max(1.0, np.sqrt(chi2 / dof)) if dof > 0 else 1.0
    return {"alpha_inf": float(coef[0]), "alpha_inf_err": float(np.sqrt(cov[0, 0]) * inflate),
            "slope": float(coef[1]), "chi2_dof": chi2 / dof if dof > 0 else None}


def load_jobs(mc_dir: Path, cfg: DictConfig) -> dict:
    jobs = {}
    for name, system in cfg.mc.systems.items():
        for n in system.sizes:
            path = mc_dir / f"{name}_n{int(n)}.json"
            rec = read_json(path, "Monte Carlo result")
            if rec.get("p") != int(system.p) or rec.get("n") != int(n) or "tasks" not in rec:
                raise ArtifactError(f"{path} is not the P={system.p} N={n} Monte Carlo result; rerun its rule")
            jobs[(name, int(n))] = rec
    return jobs


def grid_arrays(tasks: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    rows = sorted((t["alpha"], t["m"]) for t in tasks.values() if t["kind"] == kind)
    return np.array([a for a, _ in rows]), np.array([m for _, m in rows])


def capacity(name: str, system, jobs: dict, ex) -> dict:
    sizes = [int(n) for n in system.sizes]
    thresholds = {"m05": float(ex.m_threshold), "spinodal": float(ex.spinodal_m[name])}
    out = {"curves": {}, "metropolis": {}}
    per = {k: {} for k in thresholds}
    for n in sizes:
        tasks = jobs[(name, n)]["tasks"]
        alphas, m = grid_arrays(tasks, "grid")
        out["curves"][f"n{n}"] = {"alpha": alphas.tolist(), "m": m.mean(1).tolist(),
                                  "m_err": (m.std(1) / np.sqrt(m.shape[1])).tolist()}
        for key, thr in thresholds.items():
            per[key][n] = bootstrap_crossing(alphas, m, thr, int(ex.bootstrap), int(ex.bootstrap_seed) + n)
        for kind in sorted({t["kind"] for t in tasks.values() if t["kind"].startswith("grid_t")}):
            a, mt = grid_arrays(tasks, kind)
            out["metropolis"].setdefault(kind.removeprefix("grid_"), {})[f"n{n}"] = {
                "alpha": a.tolist(), "m": mt.mean(1).tolist(), "m_err": (mt.std(1) / np.sqrt(mt.shape[1])).tolist()}
    spacing = (float(system.alpha_grid.max) - float(system.alpha_grid.min)) / max(1, int(system.alpha_grid.n) - 1)
    for key in thresholds:
        by_n = {f"n{n}": {"alpha_c": v["alpha_c"], "err": v["err"], "crossed_share": v["crossed_share"]}
                for n, v in per[key].items()}
        # The fit uses the sizes whose crossing lies inside the α grid (at least two).
        ok = [n for n in sizes if per[key][n]["alpha_c"] is not None]
        res = {"threshold": thresholds[key], "crossed_all": float(len(ok) == len(sizes)), "sizes_used": len(ok), "by_n": by_n}
        if len(ok) >= 2:
            res.update(fit_limit(ok, [per[key][n]["alpha_c"] for n in ok],
                                 [per[key][n]["err"] or 0.0 for n in ok], float(ex.exponent), spacing / 20))
        else:
            res.update({"alpha_inf": None, "alpha_inf_err": None})
        out[key] = res
    out["m_at_alpha_min"] = float(min(c["m"][0] for c in out["curves"].values()))
    if not out["metropolis"]:
        del out["metropolis"]
    return out


def noise(name: str, system, jobs: dict, min_m: float) -> dict:
    """Crosstalk variance (mean square over sites, dense.crosstalk) at the retrieval fixed point
    (draws with final m ≥ min_m) over its bare value; the control is the same at the pattern."""
    by_n, control, shift, share = {}, {}, {}, {}
    for n in [int(s) for s in system.sizes]:
        t = jobs[(name, n)]["tasks"]["noise"]
        c = t["crosstalk"]
        keep = [i for i, m in enumerate(t["m"]) if m >= min_m]
        share[f"n{n}"] = len(keep) / len(t["m"])
        by_n[f"n{n}"] = float(np.mean([c["msq"][i] for i in keep]) / c["bare"]) if keep else None
        shift[f"n{n}"] = float(np.mean([c["mean"][i] for i in keep]) / np.sqrt(c["bare"])) if keep else None
        control[f"n{n}"] = float(np.mean(c["msq_at_pattern"]) / c["bare"])
    largest = f"n{max(int(s) for s in system.sizes)}"
    return {"alpha": float(system.noise_alpha), "ratio": by_n[largest], "control": control[largest],
            "ratio_by_n": by_n, "control_by_n": control, "mean_shift_by_n": shift, "retrieved_share": share}


def supralinear(name: str, system, jobs: dict) -> dict:
    sizes = [int(s) for s in system.sizes]
    fixed = {f"n{n}": float(np.mean(jobs[(name, n)]["tasks"]["noise"]["m"])) for n in sizes}
    lin = {f"n{n}": float(np.mean(jobs[(name, n)]["tasks"]["linear"]["m"])) for n in sizes}
    lin_alpha = {f"n{n}": jobs[(name, n)]["tasks"]["linear"]["alpha"] for n in sizes}
    lo, hi = f"n{min(sizes)}", f"n{max(sizes)}"
    return {"fixed": {"alpha": float(system.noise_alpha), "m": fixed, "spread": max(fixed.values()) - min(fixed.values())},
            "linear": {"kappa": float(system.linear_kappa), "m": lin, "alpha": lin_alpha, "gain": lin[hi] - lin[lo]}}


def main(cfg: DictConfig) -> dict:
    mc_dir, results = need_io(cfg, "mc", "results")
    t0 = time.monotonic()
    jobs = load_jobs(Path(mc_dir), cfg)
    ex = cfg.extrapolate
    cap = {name: capacity(name, s, jobs, ex) for name, s in cfg.mc.systems.items()}
    for name, c in cap.items():
        log.info(f"{name}: α_∞ (m=0.5) = {c['m05']['alpha_inf']}, α_∞ (m=m_c) = {c['spinodal']['alpha_inf']}")
    nz = {name: noise(name, s, jobs, float(ex.noise_min_m)) for name, s in cfg.mc.systems.items()}
    sl = {name: supralinear(name, s, jobs) for name, s in cfg.mc.systems.items() if s.linear_kappa is not None}
    wall = time.monotonic() - t0
    extra = {"mc_config_hashes": sorted({j["config_hash"] for j in jobs.values()}), "config_hash": config_hash(cfg),
             "mc_wall_time_s": round(sum(j["wall_time_s"] for j in jobs.values()), 1)}
    out = Path(results)
    metrics.write(out / "capacity.json", cfg, "capacity", "retrieval curves m(α) per N, α_c(N) and its N → ∞ extrapolation",
                  cap, wall, "cpu", extra)
    metrics.write(out / "noise.json", cfg, "noise", "crosstalk variance of the local fields at the retrieval state / bare value",
                  nz, wall, "cpu", extra)
    metrics.write(out / "supralinear.json", cfg, "supralinear", "overlap at fixed α (K ∝ N^{P-1}) and at K = κ N against N",
                  sl or {"no_linear_arm": None}, wall, "cpu", extra)  # no system sets linear_kappa: an empty record
    return {"capacity": cap, "noise": nz, "supralinear": sl}


if __name__ == "__main__":
    run(main, "rsb_dense", "extrapolate")
