"""The dense associative (Hebbian) network with P-body interactions, in the distinct-index form.

    H(σ|ξ) = -(1 / (2 (N-1)_{P-1})) Σ_μ Σ_{i1..iP distinct, ordered} ξ^μ_{i1}···ξ^μ_{iP} σ_{i1}···σ_{iP}

(`(n)_k` is the falling factorial; the paper normalises by N^{P-1}, equal at large N). With
K = α (N-1)_{P-1} patterns (the Baldi–Venkatesh high-storage regime, K ∝ N^{P-1}) the local field
on neuron i is h_i = (P/2)/(N-1)_{P-1} Σ_μ ξ^μ_i E^μ_i, where E^μ_i is the sum over ordered
distinct (P-1)-tuples of j ≠ i of x_j = ξ^μ_j σ_j. E depends only on S = Σ_{j≠i} x_j (x_j = ±1):
Newton's identities turn the power sums (p_odd = S, p_even = N-1) into elementary symmetric
polynomials, so a field costs O(K), not O(K N^{P-1}). For P = 4: E = S³ - (3N-5) S.

There are no self-interactions: flipping σ_i changes the energy by exactly ΔE = 2 σ_i h_i. The
naive energy -(1/(2N^{P-1})) Σ_μ (Σ_i ξ^μ_i σ_i)^P keeps the repeated-index terms: its local
field carries an O(αN) self-coupling on σ_i that, at K ∝ N^{P-1}, outweighs the O(1) signal and
freezes the dynamics wherever they start (the spec's pitfall; the spec calls it a fake capacity
collapse, but with this sign it pins the state instead). `naive_field` lets the tests show it.

Everything is integer arithmetic (int64), so fields, ties (h = 0 keeps the spin) and hence the
dynamics are exact and reproducible.
"""

from __future__ import annotations

import math

import numpy as np


def falling(n: int, k: int) -> int:
    """(n)_k = n (n-1) ··· (n-k+1): the number of ordered k-tuples of distinct items out of n."""
    return math.prod(range(n - k + 1, n + 1)) if k > 0 else 1


def distinct_sum(s: np.ndarray, n: int, k: int) -> np.ndarray:
    """Σ over ordered distinct k-tuples of n values x_j = ±1 of Π x, given s = Σ x_j.

    k! e_k(x) with e_k from Newton's identities: m e_m = Σ_{i=1..m} (-1)^{i-1} e_{m-i} p_i,
    with the power sums p_i = s for odd i and n for even i (x² = 1). Exact in int64 (each m e_m
    is an integer multiple of m)."""
    s = np.asarray(s, dtype=np.int64)
    e = [np.ones_like(s)]
    for m in range(1, k + 1):
        acc = np.zeros_like(s)
        for i in range(1, m + 1):
            p_i = s if i % 2 else n
            acc = acc + (1 if i % 2 else -1) * e[m - i] * p_i
        e.append(acc // m)
    return math.factorial(k) * e[k]


def brute_distinct_sum(x: np.ndarray, k: int) -> int:
    """The same sum by enumeration (tests only: O(n^k))."""
    from itertools import permutations

    return int(sum(np.prod(x[list(t)]) for t in permutations(range(len(x)), k)))


def random_patterns(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """K random ±1 patterns of N neurons (int8)."""
    return (2 * rng.integers(0, 2, size=(k, n), dtype=np.int8) - 1).astype(np.int8)


def corrupt(rng: np.random.Generator, pattern: np.ndarray, flip_fraction: float) -> np.ndarray:
    """A copy of `pattern` with round(flip_fraction N) spins flipped at random sites."""
    n = pattern.shape[-1]
    sigma = pattern.astype(np.int64).copy()
    flips = rng.choice(n, size=int(round(flip_fraction * n)), replace=False)
    sigma[flips] *= -1
    return sigma


def all_fields(xi: np.ndarray, sigma: np.ndarray, p: int, skip_first: bool = False) -> np.ndarray:
    """Integer fields Σ_μ ξ^μ_i E^μ_i for every neuron i of one network (xi: K×N, sigma: N).
    `skip_first`: leave out pattern 0 (the crosstalk of the others on a retrieved pattern 0).
    Multiply by (P/2)/(N-1)_{P-1} for h_i in energy units."""
    x = xi.astype(np.int64)
    s = x @ sigma  # (K,) overlaps Σ_j ξ^μ_j σ_j, i included
    s_minus = s[:, None] - x * sigma[None, :]  # (K, N): Σ_{j≠i}
    contrib = x * distinct_sum(s_minus, xi.shape[1] - 1, p - 1)
    return contrib[1:].sum(0) if skip_first else contrib.sum(0)


def naive_field(xi: np.ndarray, sigma: np.ndarray, i: int, p: int) -> int:
    """The local field of the naive energy -(1/(2N^{P-1})) Σ_μ (Σ_j ξ^μ_j σ_j)^P, up to its
    positive prefactor: Σ_μ ξ^μ_i S_μ^{P-1} with S_μ including neuron i itself (tests only).
    Its repeated-index terms put a self-coupling ≈ (P/2)(P-1) α N σ_i on neuron i in energy
    units (P = 4: 6αN σ_i against a retrieval signal of 2), which pins every spin."""
    s = xi.astype(np.int64) @ sigma
    return int(np.sum(xi[:, i].astype(np.int64) * s ** (p - 1)))


class Batch:
    """R independent networks of N neurons with K patterns each, updated together.

    xi_t holds the patterns neuron-major (N, R, K) so that one neuron's couplings are contiguous;
    s holds the overlaps Σ_j ξ^μ_j σ_j (R, K), kept up to date on every flip."""

    def __init__(self, patterns: np.ndarray, sigma: np.ndarray, p: int):
        r, k, n = patterns.shape
        self.p, self.n, self.k, self.r = p, n, k, r
        self.xi_t = np.ascontiguousarray(np.transpose(patterns, (2, 0, 1)))  # (N, R, K) int8
        self.sigma = sigma.astype(np.int64).copy()  # (R, N)
        self.s = np.einsum("rkn,rn->rk", patterns.astype(np.int64), self.sigma)
        self.scale = (p / 2) / falling(n - 1, p - 1)  # integer field -> energy units

    def field(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(integer field on neuron i for every network, its couplings ξ^μ_i as int64)."""
        x = self.xi_t[i].astype(np.int64)
        s_minus = self.s - x * self.sigma[:, i : i + 1]
        return (x * distinct_sum(s_minus, self.n - 1, self.p - 1)).sum(1), x

    def set_spin(self, i: int, new: np.ndarray, x: np.ndarray) -> int:
        """Set σ_i to `new` in every network; returns how many flipped."""
        old = self.sigma[:, i]
        changed = new != old
        if changed.any():
            self.s += x * (new - old)[:, None]
            self.sigma[:, i] = new
        return int(changed.sum())

    def zero_t_sweep(self, order: np.ndarray) -> int:
        """One asynchronous T = 0 sweep: σ_i ← sign(h_i), h_i = 0 keeps σ_i. Returns flips."""
        flips = 0
        for i in order:
            h, x = self.field(int(i))
            new = np.where(h > 0, 1, np.where(h < 0, -1, self.sigma[:, i]))
            flips += self.set_spin(int(i), new, x)
        return flips

    def metropolis_sweep(self, order: np.ndarray, beta: float, u: np.ndarray) -> int:
        """One Metropolis sweep at inverse temperature β; u: (R, N) uniforms in [0, 1)."""
        flips = 0
        for i in order:
            h, x = self.field(int(i))
            de = 2.0 * self.sigma[:, i] * h * self.scale  # exact ΔE: no self-interaction
            accept = (de <= 0) | (u[:, i] < np.exp(-beta * np.maximum(de, 0.0)))
            new = np.where(accept, -self.sigma[:, i], self.sigma[:, i])
            flips += self.set_spin(int(i), new, x)
        return flips

    def overlap(self, mu: int = 0) -> np.ndarray:
        """Mattis magnetisation m = (1/N) Σ_i ξ^μ_i σ_i of every network."""
        return self.s[:, mu] / self.n


def crosstalk(patterns: np.ndarray, sigma: np.ndarray, p: int) -> dict:
    """Crosstalk noise of the other patterns on the local fields at state `sigma` of one network
    retrieving pattern 0, in units where the signal is m^{P-1}: n_i = ξ^0_i Σ_{μ≥1} ξ^μ_i E^μ_i /
    (N-1)_{P-1}. Returns its mean square over sites (its variance about the bare mean 0), its
    variance about the site mean, its mean, and the bare (non-reaction) variance
    (K-1)(P-1)!/(N-1)_{P-1} it has at a state uncorrelated with the other patterns.

    The mean square is the estimator: the site mean of one network is not 0 (Σ_i ξ_i E_i is
    that pattern's own P-body energy), so the variance about it is biased low by ≈ (1 - P/N)."""
    k, n = patterns.shape
    norm = falling(n - 1, p - 1)
    noise = patterns[0].astype(np.int64) * all_fields(patterns, sigma, p, skip_first=True) / norm
    bare = (k - 1) * math.factorial(p - 1) / norm
    return {"msq": float(np.mean(noise**2)), "var": float(noise.var()), "mean": float(noise.mean()), "bare": bare}
