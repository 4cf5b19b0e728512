"""Phase `solve_levels`: statistical equilibrium of the hydrogen atom for one chunk of the model
grid (log n_H x T x N_H x U; steps.lrd_balmer.grid deals models round-robin over chunks so that
the jobs take about the same time).

    python -m steps.lrd_balmer.solve_levels scale=mini io.atom=data/lrd_balmer/atomic.json \
        io.chunk=0 io.out=data/lrd_balmer/levels/chunk0.npz
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import Progress, log
from steps.lrd_balmer import grid as gridlib
from steps.lrd_balmer import hydrogen as hy
from steps.lrd_balmer.atomic import load_atom

KM = 1e5


def solve_chunk(atom: hy.Atom, cfg: DictConfig, k: int, every_s: float = 30.0) -> dict[str, np.ndarray]:
    """Solve every model of chunk k; arrays indexed like `index` (flat model indices)."""
    ax = gridlib.axes(cfg.grid)
    allm = gridlib.models(cfg.grid)
    idx = gridlib.chunk_of(cfg.grid, k)
    n = atom.n
    out = {"index": np.asarray(idx, np.int64), "pops": np.zeros((len(idx), n)), "n_p": np.zeros(len(idx)),
           "n_e": np.zeros(len(idx)), "tau_lines": np.zeros((len(idx), n, n)), "converged": np.zeros(len(idx), bool),
           "iterations": np.zeros(len(idx), np.int64), "change": np.zeros(len(idx))}
    s = cfg.solver
    bar = Progress(len(idx), f"chunk {k}", every_s=every_s)
    for row, i in enumerate(idx):
        a, b, c, d = allm[i]
        slab = hy.Slab(n_h=10.0 ** ax["log_nh"][a], t=ax["t"][b], col=ax["col"][c], u=ax["u"][d],
                       b=float(cfg.gas.b_kms) * KM, alpha=float(cfg.gas.alpha), x_metal=float(cfg.gas.x_metal))
        res = hy.solve(atom, slab, max_iter=int(s.max_iter), tol=float(s.tol), damping=float(s.damping))
        out["pops"][row], out["n_p"][row], out["n_e"][row] = res["pops"], res["n_p"], res["n_e"]
        out["tau_lines"][row], out["converged"][row] = res["tau_lines"], res["converged"]
        out["iterations"][row], out["change"][row] = res["iterations"], res["change"]
        bar.update(1, log_nh=float(ax["log_nh"][a]), iters=int(res["iterations"]))
    bar.close()
    return out


def main(cfg: DictConfig) -> dict:
    atom_path, chunk, out = need_io(cfg, "atom", "chunk", "out")
    try:
        k = int(chunk)
    except ValueError:
        raise ConfigError(f"io.chunk must be an integer, got {chunk!r}") from None
    if not 0 <= k < int(cfg.grid.chunks):
        raise ConfigError(f"io.chunk={k} is outside 0..{int(cfg.grid.chunks) - 1} (grid.chunks)")
    t0 = time.monotonic()
    atom = hy.Atom(load_atom(atom_path), n_freq=int(cfg.atom.n_freq), e_max_ev=float(cfg.atom.e_max_ev))
    res = solve_chunk(atom, cfg, k, float(cfg.progress.every_s))
    save_npz(out, **res)
    log.info(f"chunk {k}: {len(res['index'])} models, {int(res['converged'].sum())} converged, "
             f"{time.monotonic() - t0:.1f} s")
    return {"models": len(res["index"])}


if __name__ == "__main__":
    run(main, "lrd_balmer", "solve_levels")
