"""Phase `sketch_solve`: many independent sketch-and-solve trials on one instance,
x' = argmin ||SAx − Sb||₂ for every sketch × m = c·d·ln n of the grid, and their errors.

Trial t of cell (instance, sketch, c) draws its sketch from its own generator
(steps.linf_regression.common.rng_for); with grid.gaussian_prefix the Gaussian sketches of
trial t share one G across c (its row prefixes: exact per cell, 3× cheaper). A shard (trials t ≡ shard mod shards) computes the
same rows whatever the split: at full scale the trials of an instance run as a SLURM array.

    python -m steps.linf_regression.sketch_solve scale=mini grid.shard=0 \
        io.instance=data/linf_regression/instances/hard.npz io.out=results/linf_regression/trials/hard_0.parquet
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_npz, save_parquet
from steps.core.progress import Progress, log
from steps.linf_regression import problems, sketches
from steps.linf_regression.common import blas_threads, plain, rng_for

if TYPE_CHECKING:  # imported by run_trials: sanity and timing import sketch_specs without pandas
    import pandas as pd


def sketch_specs(cfg: DictConfig) -> dict[str, dict]:
    """{name: spec} of the sketches this scale runs (sketches.use, defined in sketches.specs)."""
    missing = [s for s in cfg.sketches.use if s not in cfg.sketches.specs]
    if missing:
        raise ConfigError(f"sketches.use names undefined sketch(es) {', '.join(missing)}; defined: {', '.join(cfg.sketches.specs)}")
    return {str(s): plain(cfg.sketches.specs[s]) for s in cfg.sketches.use}


def shard_trials(trials: int, shards: int, shard: int) -> list[int]:
    if not 0 <= shard < shards:
        raise ConfigError(f"grid.shard must be in [0, {shards}), got {shard}")
    return list(range(shard, trials, shards))


def run_trials(cfg: DictConfig, inst: dict, progress_every_s: float = 30.0) -> pd.DataFrame:
    import pandas as pd

    name = str(inst["name"])
    A, b = inst["A"], inst["b"]
    n, d = A.shape
    r_norm, s_min = float(inst["r_norm"]), float(inst["sigma_min"])
    specs = sketch_specs(cfg)
    g = cfg.grid
    trials = shard_trials(int(g.trials), int(g.shards), int(g.shard))
    bar = Progress(len(specs) * len(g.c) * len(trials), f"{name} sketch-and-solve", progress_every_s)
    ms = {float(c): problems.sketch_rows(float(c), n, d, float(g.max_frac)) for c in g.c}
    rows = []

    def record(sk, c, t, x):
        rows.append({"instance": name, "sketch": sk, "c": float(c), "n": n, "d": d, "m": ms[float(c)], "trial": t,
                     **problems.errors(x, inst["x_star"], r_norm, s_min)})
        bar.update(1)

    M = np.column_stack([A, b])
    for sk, spec in specs.items():
        if spec.get("kind") == "gaussian" and bool(g.gaussian_prefix):
            # one G per trial, its row prefixes for every m (sketches.gaussian_prefixes)
            kw = {k: v for k, v in spec.items() if k != "kind"}
            for t in trials:
                SMs = sketches.gaussian_prefixes(M, list(ms.values()), rng_for(int(g.seed), name, sk, trial=t), **kw)
                for c in g.c:
                    SM = SMs[ms[float(c)]]
                    record(sk, c, t, np.linalg.lstsq(SM[:, :-1], SM[:, -1], rcond=None)[0])
            continue
        for c in g.c:
            for t in trials:
                rng = rng_for(int(g.seed), name, sk, f"c={float(c):g}", trial=t)
                record(sk, c, t, problems.sketch_and_solve(spec, A, b, ms[float(c)], rng, leverage=inst["leverage"]))
        bar.update(0, sketch=sk)
    bar.close()
    return pd.DataFrame(rows)


def main(cfg: DictConfig) -> dict:
    inst_path, out = need_io(cfg, "instance", "out")
    inst = load_npz(inst_path, "instance")
    t0 = time.monotonic()
    with blas_threads(cfg):
        df = run_trials(cfg, inst, float(cfg.progress.every_s))
    save_parquet(out, df)
    log.info(f"{len(df)} solves in {time.monotonic() - t0:.1f} s → {out}")
    return {"rows": len(df)}


if __name__ == "__main__":
    run(main, "linf_regression", "sketch_solve")
