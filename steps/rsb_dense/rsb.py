"""One-step replica symmetry breaking (1RSB) of the spin-glass (m = 0) state, the spec's stretch.

For P > 2 only the hard spin glass survives (the paper's structural result), so the m = 0 state
of the dense network is the Ising P-spin glass whose couplings have the variance of the Hebbian
ones: H = -(P!/(2N^{P-1})) Σ_μ Σ_{i1<…<iP} ξ…ξ σ…σ gives Var J = (P!)² α / (4 N^{P-1}) =
P! J² / (2 N^{P-1}) with J² = P! α / 2. With λ(q) = β² J² P q^{P-1} / 2 (replica derivation,
Gardner 1985; Gross & Mézard 1984) and Φ = -βf:

    Φ_RS(q)       = β²J²/4 [1 + (P-1) q^P] - λ(q)/2 + E_z log 2cosh(√λ z)
    Φ_1RSB(q, x)  = β²J²/4 [1 - (x-1)(P-1) q^P] - λ(q)/2 + (1/x) log E_z (2cosh √λ z)^x   (q0 = 0)

x → 0 gives back RS and x = 1 the paramagnet. q solves its stationarity condition (a weighted
E tanh²) and the Parisi parameter x ∈ (0, 1] extremises Φ (for n → 0 the free energy is
maximised, i.e. Φ minimised, over x). Entropy s = Φ - β ∂Φ/∂β at the saddle.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar


def coupling_j2(p: int, alpha: float) -> float:
    """J² of the P-spin glass equivalent to the dense network's crosstalk at load α."""
    return math.factorial(p) * alpha / 2


def _grid(shift: float, points: int = 8001) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(-12.0 - shift, 12.0 + shift, points)
    w = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * (z[1] - z[0])
    return z, w


def _log2cosh(y: np.ndarray) -> np.ndarray:
    a = np.abs(y)
    return a + np.log1p(np.exp(-2 * a))


def _lam(q: float, beta: float, j2: float, p: int) -> float:
    return beta * beta * j2 * p * q ** (p - 1) / 2


def phi_rs(q: float, beta: float, j2: float, p: int) -> float:
    lam = _lam(q, beta, j2, p)
    z, w = _grid(0.0)
    return beta * beta * j2 / 4 * (1 + (p - 1) * q**p) - lam / 2 + float(w @ _log2cosh(np.sqrt(lam) * z))


def phi_1rsb(q: float, x: float, beta: float, j2: float, p: int) -> float:
    lam = _lam(q, beta, j2, p)
    z, w = _grid(x * np.sqrt(lam))
    logs = x * _log2cosh(np.sqrt(lam) * z) + np.log(w)
    top = logs.max()
    return (beta * beta * j2 / 4 * (1 - (x - 1) * (p - 1) * q**p) - lam / 2
            + (top + np.log(np.sum(np.exp(logs - top)))) / x)


def _solve_q(beta: float, j2: float, p: int, x: float | None, tol: float = 1e-12, max_iter: int = 2000) -> float:
    """The nonzero q of the RS (x = None) or 1RSB (block size x) stationarity, from q = 1."""
    q = 1.0
    for _ in range(max_iter):
        lam = _lam(q, beta, j2, p)
        z, w = _grid(0.0 if x is None else x * np.sqrt(lam))
        y = np.sqrt(lam) * z
        t2 = np.tanh(y) ** 2
        if x is None:
            q_new = float(w @ t2)
        else:
            lw = x * _log2cosh(y) + np.log(w)
            ww = np.exp(lw - lw.max())
            q_new = float(ww @ t2 / ww.sum())
        if abs(q_new - q) < tol:
            return q_new
        q = q_new
    return q


def _entropy(phi, beta: float, h: float = 1e-5) -> float:
    return phi(beta) - beta * (phi(beta + h) - phi(beta - h)) / (2 * h)


def spin_glass(p: int, alpha: float, temperature: float) -> dict:
    """RS and 1RSB spin-glass solutions at (α, T): free energies f, entropies s, q, x."""
    beta, j2 = 1.0 / temperature, coupling_j2(p, alpha)
    q_rs = _solve_q(beta, j2, p, None)
    f_rs = -phi_rs(q_rs, beta, j2, p) / beta
    s_rs = _entropy(lambda b: phi_rs(q_rs, b, j2, p), beta)

    def objective(x):
        return phi_1rsb(_solve_q(beta, j2, p, x), x, beta, j2, p)

    # A coarse scan first: q(x) jumps to 0 (the paramagnet) where no 1RSB solution exists, so Φ(x)
    # is not unimodal on (0, 1]; then a bounded refinement around the best grid point.
    grid = np.linspace(0.02, 1.0, 50)
    best = int(np.argmin([objective(x) for x in grid]))
    lo, hi = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    res = minimize_scalar(objective, bounds=(float(lo), float(hi)), method="bounded", options={"xatol": 1e-6})
    x = float(res.x)
    q1 = _solve_q(beta, j2, p, x)
    f_1rsb = -phi_1rsb(q1, x, beta, j2, p) / beta
    s_1rsb = _entropy(lambda b: phi_1rsb(q1, x, b, j2, p), beta)
    f_para = -(beta * j2 / 4 + np.log(2) / beta)
    return {"alpha": alpha, "t": temperature, "q_rs": q_rs, "f_rs": f_rs, "s_rs": s_rs, "x": x, "q1": q1,
            "f_1rsb": f_1rsb, "s_1rsb": s_1rsb, "f_para": float(f_para), "f_gap": f_1rsb - f_rs}
