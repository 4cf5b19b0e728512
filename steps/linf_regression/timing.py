"""Phase `timing`: wall time to form SA (with Sb) for each sketch, drawing the sketch included,
at n = 2^k rows, d columns, m = c·d·ln n (the paper: SRHT's SA in O(nd log n); a dense
Gaussian S costs O(mnd)). The median over `repeats` after one warm-up, on `threads` BLAS
threads (timing.blas_threads, 1: no sketch gets more cores than another; the rule reserves
all its cores so no other job runs beside it). Leverage-score
sampling includes computing the exact leverages (a QR, O(nd²)).

    python -m steps.linf_regression.timing scale=mini io.out=results/linf_regression/timing.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.linf_regression import problems, sketches
from steps.linf_regression.common import rng_for
from steps.linf_regression.sketch_solve import sketch_specs


def time_sketch(spec: dict, M: np.ndarray, m: int, repeats: int, seed: int, name: str) -> list[float]:
    out = []
    for r in range(repeats + 1):  # r = 0: warm-up, not counted
        rng = rng_for(seed, name, trial=r)
        t0 = time.perf_counter()
        sketches.apply(spec, M, m, rng)
        dt = time.perf_counter() - t0
        if r:
            out.append(dt)
    return out


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    tc = cfg.timing
    specs = sketch_specs(cfg)
    t_start = time.monotonic()
    values: dict = {"sweep": {}}
    ns = sorted({int(n) for n in tc.n_sweep} | {int(tc.n)})
    bar = Progress(len(ns) * len(specs), "timing", float(cfg.progress.every_s))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(tc.blas_threads)):
        for n in ns:
            rng = rng_for(int(tc.seed), "design", n)
            M = np.column_stack([rng.standard_normal((n, int(tc.d))), rng.standard_normal(n)])
            m = problems.sketch_rows(float(tc.c), n, int(tc.d), float(tc.max_frac))
            for sk, spec in specs.items():
                ts = time_sketch(spec, M, m, int(tc.repeats), int(tc.seed), sk)
                med = float(np.median(ts))
                values["sweep"].setdefault(sk, {})[f"n{n}"] = med
                if n == int(tc.n):
                    values[sk] = {"time_s": med, "min_s": float(np.min(ts)), "max_s": float(np.max(ts)), "m": m, "n": n}
                    log.info(f"n={n} d={tc.d} m={m} {sk}: median {med * 1e3:.1f} ms over {len(ts)}")
                bar.update(1)
    bar.close()
    values["gaussian_over_srht"] = (values["gaussian"]["time_s"] / values["srht"]["time_s"]
                                    if "gaussian" in values and "srht" in values else None)
    metrics.write(out, cfg, "timing", "median wall seconds to form SA (sketch drawn included) per sketch; "
                  f"{int(tc.blas_threads)} BLAS thread(s), no other job beside it; not deterministic",
                  values, time.monotonic() - t_start, "cpu", extra={"repeats": int(tc.repeats)})
    return values


if __name__ == "__main__":
    run(main, "linf_regression", "timing")
