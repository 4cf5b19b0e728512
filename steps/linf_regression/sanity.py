"""Phase `sanity`: checks of the machinery behind the trials (the spec's sanity list).

- x* from np.linalg.lstsq equals the normal-equations solution (relative difference);
- the identity sketch (m = n) recovers x* (its E_inf);
- every sketch is unbiased in norm: mean over `draws` of ||Sx||² / ||x||² for a fixed x;
- our FWHT equals scipy.linalg.hadamard(n) @ x.

    python -m steps.linf_regression.sanity scale=mini io.out=results/linf_regression/sanity.json
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.linf_regression import problems, sketches
from steps.linf_regression.common import blas_threads, rng_for
from steps.linf_regression.sketch_solve import sketch_specs


def norm_ratio(spec: dict, x: np.ndarray, m: int, draws: int, seed: int, name: str, scores: np.ndarray) -> float:
    """mean_k ||S_k x||² / ||x||² over independent draws S_k (1 for an unbiased sketch)."""
    kw = {"scores": scores} if spec.get("kind") == "leverage" else {}
    col = x[:, None]
    vals = [float(np.sum(sketches.apply(spec, col, m, rng_for(seed, "norm", name, trial=k), **kw) ** 2)) for k in range(draws)]
    return float(np.mean(vals)) / float(x @ x)


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    sc = cfg.sanity
    t0 = time.monotonic()
    values: dict = {}
    with blas_threads(cfg):
        spec = {"kind": "gaussian", "n": int(sc.n), "d": int(sc.d), "noise": 1.0}
        A, b = problems.make(spec, rng_for(int(sc.seed), "instance"))
        ex = problems.exact(A, b)
        x_ne = np.linalg.solve(A.T @ A, A.T @ b)
        values["lstsq_vs_normal_rel"] = float(np.linalg.norm(ex["x_star"] - x_ne) / np.linalg.norm(x_ne))
        x_id = problems.sketch_and_solve({"kind": "identity"}, A, b, int(sc.n), rng_for(int(sc.seed), "identity"))
        values["identity_E_inf"] = problems.errors(x_id, ex["x_star"], float(ex["r_norm"]), float(ex["sigma_min"]))["E_inf"]
        x = rng_for(int(sc.seed), "x").standard_normal(int(sc.n))
        specs = sketch_specs(cfg)
        bar = Progress(len(specs), "norm preservation", float(cfg.progress.every_s))
        values["norm_ratio"] = {}
        for sk, sp in specs.items():
            values["norm_ratio"][sk] = norm_ratio(sp, x, int(sc.m), int(sc.draws), int(sc.seed), sk, ex["leverage"])
            bar.update(1, **{sk: values["norm_ratio"][sk]})
        bar.close()
        v = rng_for(int(sc.seed), "fwht").standard_normal((int(sc.fwht_n), 3))
        values["fwht_max_abs_err"] = float(np.max(np.abs(sketches.fwht(v) - scipy.linalg.hadamard(int(sc.fwht_n)) @ v)))
    log.info(f"sanity: {values}")
    metrics.write(out, cfg, "sanity", "machinery checks: lstsq vs normal equations, identity sketch, "
                  "E||Sx||² / ||x||² per sketch, FWHT vs scipy.linalg.hadamard", values, time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "linf_regression", "sanity")
