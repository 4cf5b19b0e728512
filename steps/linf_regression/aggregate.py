"""Phase `aggregate`: the trials of every instance → results/linf_regression/linf.json.

Per cell (instance, sketch, c): m, quantiles of the realised ε (E_inf), the p90 of the
concentration ρ, and the failure rate P[E_inf > ε_target(c)] with its exact (Clopper–Pearson)
binomial interval. ε_target(c) = factor × the `quantile` of the reference sketch's E_inf on
the reference instance at the same c (the spec: 1.5 × p95 of the Gaussian sketch on I1), one
target for every sketch and instance so failure rates compare. Per (instance, sketch): the
slope of log p90 E_inf against log m over the grid's distinct m (ε ∝ m^-1/2 ⇔ m ∝ ε^-2),
with a bootstrap interval (trial ids resampled jointly across m) and the OLS standard error.

    python -m steps.linf_regression.aggregate scale=mini io.trials=results/linf_regression/trials \
        io.out=results/linf_regression/linf.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from scipy import stats

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import load_parquet
from steps.core.progress import log
from steps.linf_regression.common import cell, rng_for
from steps.linf_regression.instances import instance_names
from steps.linf_regression.sketches import next_pow2


def trial_files(trials_dir: str | Path, instances: list[str], shards: int) -> list[Path]:
    return [Path(trials_dir) / f"{i}_{s}.parquet" for i in instances for s in range(shards)]


def load_trials(cfg: DictConfig, trials_dir: str | Path) -> pd.DataFrame:
    frames = [load_parquet(p, "trials table") for p in trial_files(trials_dir, instance_names(cfg), int(cfg.grid.shards))]
    df = pd.concat(frames, ignore_index=True).sort_values(["instance", "sketch", "c", "trial"], kind="stable")
    return df.reset_index(drop=True)


def targets(df: pd.DataFrame, cal: DictConfig) -> dict[float, float]:
    """ε_target(c) for every c of the grid, from the reference cell."""
    ref = df[(df.instance == cal.reference_instance) & (df.sketch == cal.reference_sketch)]
    if ref.empty:
        raise ConfigError(f"calibration needs the trials of sketch {cal.reference_sketch} on instance "
                          f"{cal.reference_instance}: add them to sketches.use / instances.use")
    return {float(c): float(cal.factor) * float(np.quantile(g.E_inf, float(cal.quantile))) for c, g in ref.groupby("c")}


def cell_stats(g: pd.DataFrame, eps: float, level: float) -> dict:
    e = g.E_inf.to_numpy()
    rho = g.rho.to_numpy()
    k, n = int((e > eps).sum()), len(e)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return {
        "m": int(g.m.iloc[0]), "trials": n,
        "p50_E_inf": float(np.quantile(e, 0.5)), "p90_E_inf": float(np.quantile(e, 0.9)),
        "p95_E_inf": float(np.quantile(e, 0.95)), "max_E_inf": float(e.max()),
        "p90_E_2": float(np.quantile(g.E_2, 0.9)),
        "p50_rho": float(np.nanquantile(rho, 0.5)), "p90_rho": float(np.nanquantile(rho, 0.9)),
        "eps_target": eps, "failures": k, "fail_rate": k / n, "fail_ci_lo": float(ci.low), "fail_ci_hi": float(ci.high),
    }


def slope(g: pd.DataFrame, q: float, boots: int, level: float, rng: np.random.Generator,
          fpc_n: int | None = None) -> dict | None:
    """Slope of log quantile_q(E_inf) vs log m over the distinct m (at an m the cap repeats, the
    smallest c's cell). The bootstrap resamples trial ids jointly across m (paired: the
    Gaussian's cells share their G across m, grid.gaussian_prefix). With fpc_n (SRHT sampling
    m of fpc_n rows without replacement), also `slope_fpc`: the slope after dividing out the
    finite-population factor sqrt(1 − m/fpc_n), a diagnostic, not a claim."""
    firsts = g.sort_values("c", kind="stable").drop_duplicates("m")
    if len(firsts) < 2:
        return None
    cols = [g[g.c == c].set_index("trial").E_inf for c in firsts.c]
    ids = sorted(set.intersection(*(set(col.index) for col in cols)))
    mat = np.column_stack([col.loc[ids].to_numpy() for col in cols])  # trials × m
    x = np.log(firsts.m.to_numpy(dtype=float))
    fit = stats.linregress(x, np.log(np.quantile(mat, q, axis=0)))
    boot = np.empty(boots)
    for i in range(boots):
        boot[i] = np.polyfit(x, np.log(np.quantile(mat[rng.integers(0, len(ids), len(ids))], q, axis=0)), 1)[0]
    a = (1 - level) / 2
    out = {"slope": float(fit.slope), "ci_lo": float(np.quantile(boot, a)), "ci_hi": float(np.quantile(boot, 1 - a)),
           "stderr": float(fit.stderr) if len(x) > 2 else None, "intercept": float(fit.intercept), "points": len(x)}
    if fpc_n:
        fpc = np.sqrt(1.0 - firsts.m.to_numpy(dtype=float) / float(fpc_n))
        out["slope_fpc"] = float(np.polyfit(x, np.log(np.quantile(mat, q, axis=0) / fpc), 1)[0])
    return out


def summarise(cfg: DictConfig, df: pd.DataFrame) -> dict:
    cal = cfg.calibration
    eps = targets(df, cal)
    level = float(cal.ci_level)
    values: dict = {"eps_target": {cell(c): v for c, v in sorted(eps.items())},
                    "dims": {i: {"n": int(g.n.iloc[0]), "d": int(g.d.iloc[0])} for i, g in df.groupby("instance", sort=False)}}
    order = {n: i for i, n in enumerate(instance_names(cfg))}
    specs = cfg.sketches.specs
    for (inst, sk), g in sorted(df.groupby(["instance", "sketch"], sort=False), key=lambda kv: order.get(kv[0][0], 99)):
        values.setdefault(inst, {})[sk] = {cell(c): cell_stats(gc, eps[float(c)], level) for c, gc in g.groupby("c")}
        spec = specs.get(sk, {})
        fpc_n = next_pow2(int(g.n.iloc[0])) if spec.get("kind") == "srht" and not spec.get("replace", False) else None
        fit = slope(g, float(cal.slope_quantile), int(cal.bootstrap), level,
                    rng_for(int(cal.seed), inst, sk), fpc_n)
        if fit is not None:
            values.setdefault("slopes", {}).setdefault(inst, {})[sk] = fit
    return values


def main(cfg: DictConfig) -> dict:
    trials_dir, out = need_io(cfg, "trials", "out")
    t0 = time.monotonic()
    df = load_trials(cfg, trials_dir)
    if df.empty:
        raise ArtifactError(f"no trials in {trials_dir}; rerun the sketch_solve rules")
    values = summarise(cfg, df)
    metrics.write(out, cfg, "linf", "realised ε (E_inf), concentration ρ and failure rates per instance × sketch × c; "
                  "fitted slopes of log p90 E_inf vs log m", values, time.monotonic() - t0, "cpu",
                  extra={"trials": int(len(df))})
    c = cell(cfg.calibration.headline_c)
    for inst in instance_names(cfg):
        for sk, cells in values.get(inst, {}).items():
            if c in cells:
                v = cells[c]
                log.info(f"{inst:>10} {sk:>12} {c}: m={v['m']} p90 E_inf={v['p90_E_inf']:.3f} "
                         f"p90 ρ={v['p90_rho']:.2f} fail={v['fail_rate']:.3f}")
    return values


if __name__ == "__main__":
    run(main, "linf_regression", "aggregate")
