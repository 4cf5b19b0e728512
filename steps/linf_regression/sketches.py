"""Sketching matrices S ∈ R^{m×n} applied to a tall matrix M (n × k): returns S @ M.

Dense: Gaussian (S_ij ~ N(0, 1/m)) and SRHT (S = sqrt(n/m) P H D, §1 of the paper: random
signs D, normalised Walsh–Hadamard H, uniform row sampler P). Sparse: CountSketch (one ±1 per
column; scipy.linalg.clarkson_woodruff_transform) and OSNAP with s nonzeros ±1/sqrt(s) per
column (scipy.sparse; Nelson–Nguyên's block construction, one row per block of m/s rows).
Sampling: uniform and exact-leverage-score row sampling (i.i.d., with replacement, reweighted
so that E[SᵀS] = I). Every sketch is unbiased: E||Sx||² = ||x||² (checked by the sanity phase).

The fast transform is our own FWHT (`fwht`): O(n log n) per column with log2(n) vectorised
butterfly passes. scipy.linalg.hadamard(n) would build the dense n × n matrix, O(n²) time and
memory per column, which is exactly the cost the paper's O(nd log n) bound avoids; the tests
check `fwht` against scipy.linalg.hadamard(n) @ x.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.sparse

from steps.core.errors import ConfigError

SketchFn = Callable[..., np.ndarray]
KINDS: dict[str, SketchFn] = {}
DENSE_KINDS = ("gaussian", "srht")


def register(kind: str):
    """Register a sketch family under `kind` (duplicates are errors, STYLE R10)."""

    def deco(fn: SketchFn) -> SketchFn:
        if kind in KINDS:
            raise ValueError(f"duplicate sketch kind '{kind}'")
        KINDS[kind] = fn
        return fn

    return deco


def fwht(x: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh–Hadamard transform along axis 0 in Sylvester (natural) order, i.e.
    scipy.linalg.hadamard(n) @ x, for n a power of two. Returns a new float64 array."""
    y = np.array(x, dtype=np.float64, copy=True)
    n = y.shape[0]
    if n < 1 or n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    flat = y.reshape(n, -1)
    h = 1
    while h < n:
        v = flat.reshape(n // (2 * h), 2, h, -1)  # a view: blocks of 2h rows, halves a | b
        a, b = v[:, 0], v[:, 1]
        tmp = a.copy()
        a += b  # a ← a + b
        b *= -1.0
        b += tmp  # b ← a - b
        h *= 2
    return y


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


@register("gaussian")
def gaussian(M: np.ndarray, m: int, rng: np.random.Generator, *, block_cols: int = 8192,
             dtype: str = "float32", **_) -> np.ndarray:
    """G @ M / sqrt(m), G i.i.d. N(0,1) drawn block_cols columns at a time (O(mnk) work, the
    memory of one m × block_cols block). dtype float32 draws G and multiplies in single
    precision (2–3× faster; the rounding, ~1e-7 relative, is far below the sketch's own
    1/sqrt(m) error), accumulating in float64."""
    n = M.shape[0]
    dt = np.dtype(dtype)
    out = np.zeros((m, M.shape[1]))
    for j in range(0, n, block_cols):
        blk = M[j : j + block_cols].astype(dt, copy=False)
        out += rng.standard_normal((m, blk.shape[0]), dtype=dt) @ blk
    return out / math.sqrt(m)


def gaussian_prefixes(M: np.ndarray, ms: list[int], rng: np.random.Generator, **kw) -> dict[int, np.ndarray]:
    """{m: G[:m] @ M / sqrt(m)} for every m in `ms` from one G of max(ms) rows: row i of G @ M
    depends on row i of G only, so each prefix is exactly a Gaussian sketch with m rows, at the
    cost of the largest (common random numbers across m; each cell's distribution is exact)."""
    top = max(ms)
    GM = gaussian(M, top, rng, **kw) * math.sqrt(top)
    return {m: GM[:m] / math.sqrt(m) for m in sorted(set(ms))}


@register("srht")
def srht(M: np.ndarray, m: int, rng: np.random.Generator, *, replace: bool = False, **_) -> np.ndarray:
    """sqrt(n'/m) P H D M with n' = n rounded up to a power of two (zero rows padded), H the
    normalised Hadamard matrix, D random signs, P m distinct uniform rows (replace=False)."""
    n = M.shape[0]
    npad = next_pow2(n)
    if not replace and m > npad:
        raise ConfigError(f"SRHT without replacement needs m ≤ {npad}, got m={m}")
    X = np.zeros((npad, M.shape[1]))
    X[:n] = M * rng.choice(np.array([-1.0, 1.0]), size=n)[:, None]
    rows = rng.choice(npad, size=m, replace=replace)
    # sqrt(n'/m) · (1/sqrt(n')) H = H / sqrt(m)
    return fwht(X)[rows] / math.sqrt(m)


@register("countsketch")
def countsketch(M: np.ndarray, m: int, rng: np.random.Generator, **_) -> np.ndarray:
    """CountSketch (Clarkson–Woodruff): one ±1 per column of S, in a uniformly random row."""
    return np.asarray(scipy.linalg.clarkson_woodruff_transform(M, m, rng=rng))


def osnap_matrix(n: int, m: int, s: int, rng: np.random.Generator) -> scipy.sparse.csr_matrix:
    """OSNAP S ∈ R^{m×n}: the m rows split into s blocks; column j has one ±1/sqrt(s) in each
    block (so s distinct rows)."""
    if not 1 <= s <= m:
        raise ConfigError(f"OSNAP needs 1 ≤ s ≤ m, got s={s}, m={m}")
    bounds = np.linspace(0, m, s + 1).astype(np.int64)
    sizes = np.diff(bounds)
    rows = bounds[:-1, None] + (rng.random((s, n)) * sizes[:, None]).astype(np.int64)
    vals = rng.choice(np.array([-1.0, 1.0]), size=(s, n)) / math.sqrt(s)
    cols = np.broadcast_to(np.arange(n), (s, n))
    return scipy.sparse.csr_matrix((vals.ravel(), (rows.ravel(), cols.ravel())), shape=(m, n))


@register("osnap")
def osnap(M: np.ndarray, m: int, rng: np.random.Generator, *, s: int = 2, **_) -> np.ndarray:
    return np.asarray(osnap_matrix(M.shape[0], m, int(s), rng) @ M)


@register("uniform")
def uniform(M: np.ndarray, m: int, rng: np.random.Generator, **_) -> np.ndarray:
    """m rows drawn uniformly with replacement, scaled by sqrt(n/m)."""
    n = M.shape[0]
    return M[rng.integers(0, n, size=m)] * math.sqrt(n / m)


@register("leverage")
def leverage(M: np.ndarray, m: int, rng: np.random.Generator, *, scores: np.ndarray | None = None, **_) -> np.ndarray:
    """m rows drawn i.i.d. with p_i ∝ ℓ_i (exact leverage scores of A), row i scaled by
    1/sqrt(m p_i). `scores` are the leverages; without them they are computed from M's first
    k-1 columns (A of [A | b]), which is what the timing phase measures."""
    if scores is None:
        scores = leverage_scores(M[:, :-1])
    p = np.asarray(scores, dtype=np.float64)
    p = p / p.sum()
    idx = rng.choice(M.shape[0], size=m, p=p)
    return M[idx] / np.sqrt(m * p[idx])[:, None]


@register("identity")
def identity(M: np.ndarray, m: int, rng: np.random.Generator, **_) -> np.ndarray:
    """S = I_n (m = n): the exact solution; a sanity check."""
    return np.array(M, dtype=np.float64, copy=True)


def leverage_scores(A: np.ndarray) -> np.ndarray:
    """ℓ_i = ||Q_i||² with A = QR (thin QR), Σ ℓ_i = rank(A)."""
    q, _ = np.linalg.qr(A, mode="reduced")
    return np.einsum("ij,ij->i", q, q)


def apply(spec: dict, M: np.ndarray, m: int, rng: np.random.Generator, **kw) -> np.ndarray:
    """S @ M for the sketch `spec` ({kind: ..., plus the family's own keys})."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in KINDS:
        raise ConfigError(f"unknown sketch kind '{kind}'; valid: {', '.join(sorted(KINDS))}")
    return KINDS[kind](M, int(m), rng, **spec, **kw)
