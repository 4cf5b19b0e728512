"""Phase `montecarlo`: zero-temperature asynchronous dynamics (and Metropolis at T > 0) of one
dense network family (P) at one size N, over a grid of loads α = K / (N-1)_{P-1}.

Each task is one load: `mc.draws` networks with fresh random patterns, started at pattern 1
with `mc.flip_fraction` of its spins flipped, relaxed to a fixed point (T = 0) or for
`mc.metropolis_sweeps` sweeps (T > 0). Tasks:

* grid:   the α grid of the system (the retrieval curve m(α) whose 0.5 crossing is α_c(N));
* noise:  α = noise_alpha, where the crosstalk variance of the local fields is measured at the
          retrieval fixed point and, as a control, at the pattern itself;
* linear: K = κ N patterns (a load linear in N, the wrong scaling for P > 2);
* grid_t<T>: the α grid again by Metropolis at temperature T (sizes in metropolis_sizes).

A task's randomness depends only on (mc.seed, P, N, task, draw), so the job resumes after a kill
(steps.core.checkpoint.TrainLoop over tasks) and reruns give identical numbers.

    python -m steps.rsb_dense.montecarlo scale=mini io.system=p4 io.n=32 io.out=data/rsb_dense/mc/p4_n32.json
"""

from __future__ import annotations

import time
import zlib

import numpy as np
from omegaconf import DictConfig

from steps.core.checkpoint import Snapshots, TrainLoop
from steps.core.cli import need_io, run
from steps.core.config import config_hash
from steps.core.errors import ConfigError
from steps.core.io import write_json
from steps.core.progress import log
from steps.rsb_dense import dense


def alpha_grid(g) -> list[float]:
    return [float(a) for a in np.linspace(float(g.min), float(g.max), int(g.n))]


def tasks(system, n: int) -> list[dict]:
    """The job's tasks in order: name, temperature and pattern count K."""
    p = int(system.p)
    norm = dense.falling(n - 1, p - 1)

    def k_of(alpha):
        return max(2, int(round(alpha * norm)))

    out = [{"name": f"grid_{j}", "kind": "grid", "t": 0.0, "k": k_of(a)} for j, a in enumerate(alpha_grid(system.alpha_grid))]
    out.append({"name": "noise", "kind": "noise", "t": 0.0, "k": k_of(float(system.noise_alpha))})
    if system.linear_kappa is not None:
        out.append({"name": "linear", "kind": "linear", "t": 0.0, "k": max(2, int(round(float(system.linear_kappa) * n)))})
    if n in [int(s) for s in system.metropolis_sizes]:
        for t in system.temperatures:
            tag = f"t{float(t):g}".replace(".", "_")
            out += [{"name": f"grid_{tag}_{j}", "kind": f"grid_{tag}", "t": float(t), "k": k_of(a)}
                    for j, a in enumerate(alpha_grid(system.alpha_grid))]
    return out


def rng_for(seed: int, p: int, n: int, task: str, draw: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, p, n, zlib.crc32(task.encode()), draw]))


def run_task(task: dict, p: int, n: int, mc) -> dict:
    """Simulate one task's draws together; per-draw final overlaps and, for `noise`, crosstalk."""
    draws, seed = int(mc.draws), int(mc.seed)
    rngs = [rng_for(seed, p, n, task["name"], r) for r in range(draws)]
    patterns = np.stack([dense.random_patterns(g, task["k"], n) for g in rngs])
    sigma0 = np.stack([dense.corrupt(g, patterns[r, 0], float(mc.flip_fraction)) for r, g in enumerate(rngs)])
    batch = dense.Batch(patterns, sigma0, p)
    order_rng = rng_for(seed, p, n, task["name"] + "/order", 0)
    sweeps, trace, flips = 0, [], -1
    if task["t"] == 0.0:
        while flips != 0 and sweeps < int(mc.max_sweeps):  # until a sweep flips nothing: a fixed point
            flips = batch.zero_t_sweep(order_rng.permutation(n))
            sweeps += 1
        m = batch.overlap()
        converged = flips == 0
    else:
        beta = 1.0 / task["t"]
        total = int(mc.metropolis_sweeps)
        for sweeps in range(1, total + 1):
            batch.metropolis_sweep(order_rng.permutation(n), beta, order_rng.random((draws, n)))
            if sweeps > total // 2:
                trace.append(batch.overlap())
        m = np.mean(trace, axis=0)  # time average over the second half
        converged = True
    out = {"k": task["k"], "alpha": task["k"] / dense.falling(n - 1, p - 1), "t": task["t"],
           "m": [float(v) for v in m], "sweeps": sweeps, "converged": bool(converged)}
    if task["kind"] == "noise":
        at_fixed = [dense.crosstalk(patterns[r], batch.sigma[r], p) for r in range(draws)]
        at_pattern = [dense.crosstalk(patterns[r], patterns[r, 0].astype(np.int64), p) for r in range(draws)]
        out["crosstalk"] = {
            "msq": [c["msq"] for c in at_fixed], "var": [c["var"] for c in at_fixed], "mean": [c["mean"] for c in at_fixed],
            "msq_at_pattern": [c["msq"] for c in at_pattern], "bare": at_fixed[0]["bare"],
        }
    return out


def main(cfg: DictConfig) -> dict:
    name, n_text, out = need_io(cfg, "system", "n", "out")
    if name not in cfg.mc.systems:
        raise ConfigError(f"unknown system '{name}'; valid: {', '.join(cfg.mc.systems)}")
    system = cfg.mc.systems[name]
    p, n = int(system.p), int(n_text)
    if n not in [int(s) for s in system.sizes]:
        raise ConfigError(f"N={n} is not among mc.systems.{name}.sizes {list(system.sizes)}")
    todo = tasks(system, n)
    log.info(f"{name}: P={p} N={n}, {len(todo)} tasks × {cfg.mc.draws} draws, K from {min(t['k'] for t in todo)} "
             f"to {max(t['k'] for t in todo)}")
    results = Snapshots()
    t0 = time.monotonic()
    loop = TrainLoop(cfg, out, total=len(todo), desc=f"mc {name} N={n}", results=results)
    for step in loop:
        task = todo[step]
        results[task["name"]] = {"kind": task["kind"], **run_task(task, p, n, cfg.mc)}
        loop.log(m=float(np.mean(results[task["name"]]["m"])), k=task["k"])
    write_json(out, {"system": name, "p": p, "n": n, "config_hash": config_hash(cfg),
                     "wall_time_s": round(time.monotonic() - t0, 3), "tasks": dict(results)}, artifact=True)
    loop.finish()
    return {"tasks": len(todo)}


if __name__ == "__main__":
    run(main, "rsb_dense", "montecarlo")
