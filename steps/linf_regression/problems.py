"""Regression instances, their exact solution, the sketched solution and its errors.

The paper's guarantee (abstract): ||x' − x*||∞ ≤ (ε/√d) ||Ax* − b||₂ ||A†||, with
x' = argmin ||SAx − Sb||₂ and ||A†|| = 1/σ_min(A). We report the realised ε of a solve,

    E_inf = √d ||x' − x*||∞ / (||Ax* − b||₂ / σ_min(A)),

its ℓ₂ analogue E_2 = ||x' − x*||₂ / (||Ax* − b||₂ / σ_min(A)), and the concentration
ρ = √d ||e||∞ / ||e||₂ (≈ √(2 ln d) for an error spread over the coordinates, √d on one).

Instances (steps.linf_regression.instances writes them):
- gaussian ("I1, benign"): A ~ N(0,1)^{n×d}, b = A x0 + σ·N(0, I).
- coherent_spiky ("I2, hard"): our construction after the PSW17 counterexamples, not from the
  paper: A = [c·I_d ; τ·G], b = A x0 + r with k heavy entries ±h at random rows ≥ d plus
  σ·N(0, I). A hashing sketch that puts a heavy residual row in the bucket of an identity row
  moves that one coordinate of x' by ≈ h/c.
- diabetes ("I3, real"): sklearn's load_diabetes (442 × 10), features and target standardised.
- csv (full scale): a fetched real design read by steps.linf_regression.fetch.load_table.
"""

from __future__ import annotations

import math

import numpy as np

from steps.core.errors import ConfigError
from steps.linf_regression import sketches


def _standardise(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sx = X.std(axis=0)
    sx[sx == 0] = 1.0
    return (X - X.mean(axis=0)) / sx, (y - y.mean()) / (y.std() or 1.0)


def make(spec: dict, rng: np.random.Generator, table: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) for an instance spec ({kind: ..., ...}); `table` = (X, y) for kind csv."""
    kind = spec.get("kind")
    if kind == "gaussian":
        n, d = int(spec["n"]), int(spec["d"])
        A = rng.standard_normal((n, d))
        b = A @ rng.standard_normal(d) + float(spec["noise"]) * rng.standard_normal(n)
        return A, b
    if kind == "coherent_spiky":
        n, d, k = int(spec["n"]), int(spec["d"]), int(spec["k_heavy"])
        if n < d + k:
            raise ConfigError(f"coherent_spiky needs n ≥ d + k_heavy, got n={n}, d={d}, k={k}")
        A = np.vstack([float(spec["c"]) * np.eye(d), float(spec["tail"]) * rng.standard_normal((n - d, d))])
        r = float(spec["noise"]) * rng.standard_normal(n)
        heavy = rng.choice(np.arange(d, n), size=k, replace=False)
        r[heavy] = float(spec["heavy"]) * rng.choice(np.array([-1.0, 1.0]), size=k)
        return A, A @ rng.standard_normal(d) + r
    if kind == "diabetes":
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
        return _standardise(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))
    if kind == "csv":
        if table is None:
            raise ConfigError("a csv instance needs its fetched table (io.table=<path>)")
        X, y = table
        n_max = spec.get("n_max")
        if n_max is not None and len(y) > int(n_max):
            keep = np.sort(rng.choice(len(y), size=int(n_max), replace=False))
            X, y = X[keep], y[keep]
        return _standardise(X, y)
    raise ConfigError(f"unknown instance kind '{kind}'; valid: gaussian, coherent_spiky, diabetes, csv")


def exact(A: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """x* (np.linalg.lstsq), ||Ax* − b||₂, σ_min(A) and the exact leverage scores of A."""
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    sv = np.linalg.svd(A, compute_uv=False)
    if sv[-1] <= sv[0] * 1e-12:
        raise ConfigError("the instance's A is rank-deficient: ||A†|| is unbounded")
    return {
        "x_star": x_star,
        "r_norm": np.array(np.linalg.norm(b - A @ x_star)),
        "sigma_min": np.array(sv[-1]),
        "leverage": sketches.leverage_scores(A),
    }


def sketch_rows(c: float, n: int, d: int, max_frac: float) -> int:
    """m = ⌈c · d · ln n⌉, capped at ⌊max_frac · n⌋ (the spec's grid)."""
    return int(min(math.ceil(c * d * math.log(n)), math.floor(max_frac * n)))


def sketch_and_solve(spec: dict, A: np.ndarray, b: np.ndarray, m: int, rng: np.random.Generator,
                     leverage: np.ndarray | None = None) -> np.ndarray:
    """x' = argmin ||SAx − Sb||₂ (minimum-norm least squares when SA is rank-deficient)."""
    kw = {"scores": leverage} if spec.get("kind") == "leverage" else {}
    SM = sketches.apply(spec, np.column_stack([A, b]), m, rng, **kw)
    return np.linalg.lstsq(SM[:, :-1], SM[:, -1], rcond=None)[0]


def errors(x: np.ndarray, x_star: np.ndarray, r_norm: float, sigma_min: float) -> dict[str, float]:
    """E_inf (the realised ε), E_2 and ρ for one solve (ρ is NaN when x' = x*)."""
    e = x - x_star
    d = e.size
    scale = r_norm / sigma_min
    inf, two = float(np.max(np.abs(e))), float(np.linalg.norm(e))
    return {
        "E_inf": math.sqrt(d) * inf / scale,
        "E_2": two / scale,
        "rho": math.sqrt(d) * inf / two if two > 0 else float("nan"),
        "argmax": int(np.argmax(np.abs(e))),
    }
