"""Phase `theory`: the replica-symmetric theory, solved numerically (steps.rsb_dense.rs).

* T = 0 capacity α_c(P) of the hard-only RS equations (the paper's P > 2 structure: no soft
  spin glass, no reaction term) for every P in theory.ps, and the AGS capacity of P = 2 with the
  reaction term (the known 0.138) beside the hard-only P = 2 value 2/π;
* T = 0 retrieval curves m(α) for each P (and both P = 2 theories);
* finite-T RS curves m(α; T) for theory.finite_t_ps at theory.temperatures;
* the AGS reaction factor r = 1/(1-C)² at the P = 2 noise loads;
* a quadrature check: the finite-T solver at T = 10⁻³ against the closed T = 0 form;
* the spin-glass (m = 0) state at RS and 1RSB (steps.rsb_dense.rsb) over theory.onersb.temperatures:
  free energies, entropies, the Parisi parameter x (the spec's stretch goal).

    python -m steps.rsb_dense.theory scale=mini io.out=results/rsb_dense/theory.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.rsb_dense import rs, rsb


def _tag(x: float) -> str:
    return f"{x:g}".replace(".", "_").replace("-", "m")


def t0_curve(p: int, ags: bool, points: int) -> dict:
    ac = rs.critical(p, ags)["alpha_c"]
    alphas = np.linspace(ac / points, 1.25 * ac, points)
    return {"alpha": alphas.tolist(), "m": [rs.m_zero_t(float(a), p, ags) for a in alphas]}


def finite_t_curve(p: int, ags: bool, temperature: float, alphas: np.ndarray, nodes: int) -> dict:
    sols = [rs.solve_finite_t(float(a), temperature, p, nodes, ags) for a in alphas]
    return {"alpha": alphas.tolist(), "m": [s["m"] if s["converged"] else None for s in sols],
            "q": [s["q"] if s["converged"] else None for s in sols]}


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    t0 = time.monotonic()
    th = cfg.theory
    ps = [int(p) for p in th.ps]
    nodes, points = int(th.quadrature_nodes), int(th.curve_points)
    crit = {f"p{p}": rs.critical(p) for p in ps}
    ags = rs.critical(2, ags=True)
    log.info("hard-only RS α_c: " + ", ".join(f"{k}={v['alpha_c']:.5g}" for k, v in crit.items())
             + f"; AGS α_c(2)={ags['alpha_c']:.5g}")
    curves = {f"p{p}": t0_curve(p, False, points) for p in ps if p > 2}
    curves["p2_ags"] = t0_curve(2, True, points)
    curves["p2_hardonly"] = {"alpha": curves["p2_ags"]["alpha"],
                             "m": [rs.m_zero_t(a, 2) for a in curves["p2_ags"]["alpha"]]}

    finite_t = {}
    jobs = [(float(t), int(p)) for t in th.temperatures for p in th.finite_t_ps]
    bar = Progress(len(jobs), "finite-T RS curves", float(cfg.progress.every_s))
    for temperature, p in jobs:
        ac = ags["alpha_c"] if p == 2 else rs.critical(p)["alpha_c"]
        alphas = np.linspace(ac / points, 1.5 * ac, points)
        finite_t.setdefault(f"t{_tag(temperature)}", {})[f"p{p}"] = finite_t_curve(p, p == 2, temperature, alphas, nodes)
        bar.update(1)
    bar.close()

    reaction = {f"a{_tag(float(a))}": {"alpha": float(a), **rs.ags_reaction(float(a))} for a in th.noise_alphas}
    check_alpha = 0.9 * crit["p4"]["alpha_c"] if "p4" in crit else 0.05
    low_t = rs.solve_finite_t(check_alpha, 1e-3, 4, nodes)
    ob = th.onersb
    sg = [rsb.spin_glass(int(ob.p), float(ob.alpha), float(t)) for t in ob.temperatures]
    low = min(sg, key=lambda r: r["t"])
    log.info(f"spin glass P={ob.p} α={ob.alpha} T={low['t']}: f_RS={low['f_rs']:.4f} s_RS={low['s_rs']:.3f}, "
             f"f_1RSB={low['f_1rsb']:.4f} s_1RSB={low['s_1rsb']:.4f} x={low['x']:.3f}")
    onersb = {"p": int(ob.p), "alpha": float(ob.alpha), "t_low": low["t"], "f_gap": low["f_gap"],
              "s_rs": low["s_rs"], "s_1rsb": low["s_1rsb"], "x": low["x"], "q1": low["q1"],
              "curves": {k: [r[k] for r in sg] for k in ("t", "f_rs", "f_1rsb", "f_para", "s_rs", "s_1rsb", "x", "q1", "q_rs")}}
    values = {
        "alpha_c": {"hardonly": {k: v["alpha_c"] for k, v in crit.items()}, "ags": {"p2": ags["alpha_c"]}},
        "m_c": {"hardonly": {k: v["m_c"] for k, v in crit.items()}, "ags": {"p2": ags["m_c"]}},
        "soft_part_ratio_p2": ags["alpha_c"] / crit["p2"]["alpha_c"] if "p2" in crit else None,
        "ags_reaction": reaction,
        "curves": curves,
        "finite_t": finite_t,
        "onersb": onersb,
        "checks": {"low_t_gap_p4": abs(low_t["m"] - rs.m_zero_t(check_alpha, 4)), "low_t_alpha": check_alpha},
    }
    metrics.write(out, cfg, "theory", "replica-symmetric theory: T = 0 capacities, retrieval curves, finite-T curves",
                  values, time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "rsb_dense", "theory")
