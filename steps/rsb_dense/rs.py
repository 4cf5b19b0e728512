"""Replica-symmetric theory of the dense Hebbian network (the paper's RS self-consistency, in the
normalisation of steps.rsb_dense.dense) and the Amit–Gutfreund–Sompolinsky (AGS) reference P = 2.

For P > 2 only the hard (Sherrington–Kirkpatrick-like) spin glass survives (the paper's
structural result): the crosstalk of the K = α (N-1)_{P-1} other patterns is a Gaussian field of
variance (P-1)! α q^{P-1} (signal units) with no Onsager reaction term, so

    m = E_z tanh(β (P/2) [m^{P-1} + z √((P-1)! α q^{P-1})]),   q = E_z tanh²(same)

and at T = 0, with y = m^{P-1}/√(2 (P-1)! α):  m = erf(y),  α(y) = erf(y)^{2(P-1)} / (2 (P-1)! y²).
The retrieval state exists for α ≤ α_c = max_y α(y). The same "hard-only" formula at P = 2 gives
α_c = 2/π; the true P = 2 answer (AGS) keeps the soft (Gaussian) part, the reaction term
r = q / (1 - β(1-q))²: m = E tanh(β(m + z√(αr))) and at T = 0, with C = β(1-q),
α(y) = (erf(y) - 2y e^{-y²}/√π)² / (2y²), whose maximum is α_c ≈ 0.138.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import erf


def hardonly_alpha(y, p: int):
    """α(y) on the T = 0 hard-only branch m = erf(y)."""
    return erf(y) ** (2 * (p - 1)) / (2 * math.factorial(p - 1) * y * y)


def ags_alpha(y):
    """α(y) on the T = 0 AGS branch (P = 2 with the reaction term)."""
    return (erf(y) - 2 * y * np.exp(-y * y) / np.sqrt(np.pi)) ** 2 / (2 * y * y)


def _alpha_fn(p: int, ags: bool):
    if ags and p != 2:
        raise ValueError("the AGS reaction term is the P = 2 theory")
    return ags_alpha if ags else (lambda y: hardonly_alpha(y, p))


def critical(p: int, ags: bool = False) -> dict:
    """T = 0 capacity: {alpha_c, y_c, m_c} (m_c: the overlap as the retrieval state disappears)."""
    f = _alpha_fn(p, ags)
    if p == 2 and not ags:  # α(y) decreases in y: the transition is continuous, at y → 0
        return {"alpha_c": 2 / np.pi, "y_c": 0.0, "m_c": 0.0}
    res = minimize_scalar(lambda y: -f(y), bounds=(1e-3, 8.0), method="bounded", options={"xatol": 1e-12})
    return {"alpha_c": float(-res.fun), "y_c": float(res.x), "m_c": float(erf(res.x))}


def retrieval_y(alpha: float, p: int, ags: bool = False) -> float | None:
    """y on the retrieval branch (y ≥ y_c) at load α; None above α_c."""
    f = _alpha_fn(p, ags)
    c = critical(p, ags)
    if alpha > c["alpha_c"]:
        return None
    lo = max(c["y_c"], 1e-9)
    hi = 2 * lo + 1.0
    while f(hi) > alpha:
        hi *= 2
    return float(brentq(lambda y: f(y) - alpha, lo, hi, xtol=1e-14)) if f(lo) > alpha else lo


def m_zero_t(alpha: float, p: int, ags: bool = False) -> float:
    """The retrieval overlap at T = 0 (0 above α_c)."""
    y = retrieval_y(alpha, p, ags)
    return 0.0 if y is None else float(erf(y))


def ags_reaction(alpha: float) -> dict:
    """AGS at T = 0 on the retrieval branch: C = β(1-q) and the noise enhancement r = 1/(1-C)²."""
    y = retrieval_y(alpha, 2, ags=True)
    if y is None:
        return {"C": None, "r": None, "m": 0.0}
    c = 2 * y * np.exp(-y * y) / (np.sqrt(np.pi) * erf(y))
    return {"C": float(c), "r": float(1 / (1 - c) ** 2), "m": float(erf(y))}


def tanh_moments(gain: float, signal: float, width: float, nodes: int, span: float = 12.0) -> tuple[float, float]:
    """(E_z t, E_z t²) with t = tanh(gain (signal + width z)), z ~ N(0, 1), by Gauss–Legendre on
    [-span, z0] and [z0, span], z0 = -signal/width. At low T t is a step at z0, which
    Gauss–Hermite (the spec's choice) smears out; Legendre nodes cluster at the ends of each
    piece, i.e. at the step."""
    from scipy.special import roots_legendre

    x, w = roots_legendre(nodes)
    z0 = float(np.clip(-signal / width, -span + 1e-9, span - 1e-9)) if width > 0 else -span + 1e-9
    m1 = m2 = 0.0
    for a, b in ((-span, z0), (z0, span)):
        z = 0.5 * (b - a) * x + 0.5 * (b + a)
        t = np.tanh(gain * (signal + width * z))
        wz = 0.5 * (b - a) * w * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
        m1 += float(wz @ t)
        m2 += float(wz @ (t * t))
    return m1, m2


def solve_finite_t(alpha: float, temperature: float, p: int, nodes: int = 64, ags: bool = False,
                   start: tuple[float, float] = (1.0, 1.0), tol: float = 1e-11, max_iter: int = 5000) -> dict:
    """The RS (m, q) at (α, T) by damped fixed-point iteration from `start` (the retrieval
    branch when started at m = q = 1); `nodes` Legendre nodes per half-line. ags=True adds the
    P = 2 reaction term r = q/(1-β(1-q))²."""
    beta = 1.0 / temperature
    m, q = start
    for it in range(max_iter):
        if ags:
            c = beta * (1 - q)
            if c >= 1:
                return {"m": 0.0, "q": q, "iterations": it, "converged": False}
            signal, width = m, np.sqrt(alpha * q / (1 - c) ** 2)
        else:
            signal, width = m ** (p - 1), np.sqrt(math.factorial(p - 1) * alpha * q ** (p - 1))
        m_new, q_new = tanh_moments(beta * (1.0 if ags else p / 2), signal, width, nodes)
        if abs(m_new - m) < tol and abs(q_new - q) < tol:
            return {"m": m_new, "q": q_new, "iterations": it, "converged": True}
        m, q = 0.5 * m + 0.5 * m_new, 0.5 * q + 0.5 * q_new
    return {"m": m, "q": q, "iterations": max_iter, "converged": False}


def retrieval_boundary(temperature: float, p: int, alpha_max: float, nodes: int = 64, ags: bool = False,
                       m_min: float = 0.3, iters: int = 40) -> float:
    """The largest α ≤ alpha_max at which the retrieval solution (m ≥ m_min, followed from
    m = q = 1) exists at temperature T, by bisection; 0 when there is none even at α → 0."""
    def retrieves(a):
        sol = solve_finite_t(a, temperature, p, nodes, ags)
        return sol["converged"] and sol["m"] >= m_min

    lo, hi = 0.0, alpha_max
    if not retrieves(1e-9):
        return 0.0
    if retrieves(hi):
        return hi
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if retrieves(mid) else (lo, mid)
    return lo
