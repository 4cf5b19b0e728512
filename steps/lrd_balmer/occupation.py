"""Occupation probabilities of hydrogen levels in a plasma (Hummer & Mihalas 1988, ApJ 331, 794;
"H&M"), and the dissolved fraction of a bound-free continuum below its edge.

A level n exists (is bound) with probability w_n: perturbers (neutral atoms by their size,
charged particles by their electric microfield) destroy the outer levels, so the series of lines
from a lower level i does not run to n -> infinity but fades out near the Inglis-Teller limit,
and the oscillator strength of the destroyed upper levels appears as a "dissolved" bound-free
pseudo-continuum redward of the edge (Däppen, Anderson & Mihalas 1987, ApJ 319, 195; Hubeny,
Hummer & Lanz 1994, A&A 282, 151, "HHL94", §2). Here:

- neutral perturbers: H&M eq. (4.71), hard spheres: ln w = -(4 pi / 3) n_H0 (r_n + r_1)^3, with
  r_n the rms radius of the level (l = 0: a0 sqrt(5/2 n^4 + 1/2 n^2)) and r_1 = sqrt(3) a0 that
  of the perturber in its ground state (the sizes of Barklem & Piskunov's HBOP code, also used by
  Korg; Wheeler et al. 2023). Only hydrogen perturbs (the model has no helium).
- charged perturbers: the Holtsmark microfield. Default (`charged="hhl94"`): HHL94 Appendix A,
  the fit to H&M's Holtsmark-based w = Q(beta) with ion correlations (temperature enters through
  a = 0.09 n_e^{1/6} T^{-1/2}); alternative (`charged="hm88"`): H&M eq. (4.71)'s nearest-neighbour
  term, ln w = -(4 pi / 3) 16 (e^2 / (chi_n K_n^{1/2}))^3 n_ion. Both take singly charged ions,
  n_ion = n_e, and K_n of H&M eq. (4.24).
- w_n = w_neutral x w_charged (H&M eq. 4.71: the log contributions add).
- the dissolved fraction of level i's continuum at frequency nu below its edge:
  D_i(nu) = 1 - w(n*)/w_i with n* the effective quantum number of the upper state the photon
  would reach, 1/n*^2 = 1/i^2 - h nu / R_H (HHL94 §2; Däppen et al. 1987); D = 1 above the edge.

Inglis & Teller (1939, ApJ 90, 439): the last resolved line of a series at electron density
n_e (cm^-3) satisfies log10 n_e = 23.26 - 7.5 log10 n_max; w_n falls from ~1 to ~0 about it.
"""

from __future__ import annotations

import numpy as np

from steps.lrd_balmer.atomic_data import A0_CGS, E_ESU, EV_CGS, H_CGS, RH_EV

CHARGED = ("hhl94", "hm88")


def k_qm(n: np.ndarray) -> np.ndarray:
    """H&M eq. (4.24): the quantum-mechanical correction K_n to the critical field of level n
    (1 for n <= 3; continuous at n = 3, -> 16/(3n) for large n)."""
    n = np.asarray(n, float)
    big = 16.0 / 3.0 * (n / (n + 1.0)) ** 2 * (n + 7.0 / 6.0) / (n**2 + n + 0.5)
    return np.where(n > 3.0, big, 1.0)


def w_neutral(n: np.ndarray, n_h0: float) -> np.ndarray:
    """H&M eq. (4.71), neutral hydrogen perturbers (density n_h0, ground state) as hard spheres."""
    n = np.asarray(n, float)
    r_n = A0_CGS * np.sqrt(2.5 * n**4 + 0.5 * n**2)
    return np.exp(-4.0 * np.pi / 3.0 * n_h0 * (r_n + np.sqrt(3.0) * A0_CGS) ** 3)


def w_charged(n: np.ndarray, n_e: float, t: float, form: str = "hhl94") -> np.ndarray:
    """The charged-perturber factor of w_n (singly charged ions, n_ion = n_e)."""
    n = np.asarray(n, float)
    if form not in CHARGED:
        raise ValueError(f"unknown charged-perturber form '{form}'; valid: {', '.join(CHARGED)}")
    if n_e <= 0.0:
        return np.ones_like(n)
    k = k_qm(n)
    if form == "hm88":
        chi = RH_EV / n**2 * EV_CGS                          # binding energy of level n, erg
        return np.exp(-4.0 * np.pi / 3.0 * 16.0 * (E_ESU**2 / (chi * np.sqrt(k))) ** 3 * n_e)
    # HHL94 Appendix A: beta = critical field / Holtsmark normal field, x corrects for correlations
    beta = 8.3e14 * n_e ** (-2.0 / 3.0) * k / n**4
    a = 0.09 * n_e ** (1.0 / 6.0) / np.sqrt(t)
    x = (1.0 + a) ** 3.15
    f = 0.1402 * x * beta**3 / (1.0 + 0.1285 * x * beta**1.5)
    return f / (1.0 + f)


def w(n: np.ndarray, n_e: float, n_h0: float, t: float, charged: str = "hhl94") -> np.ndarray:
    """Occupation probability w_n of hydrogen level n (n may be non-integer: an effective n*)."""
    return w_neutral(n, n_h0) * w_charged(n, n_e, t, charged)


def inglis_teller_n(n_e: float) -> float:
    """Inglis & Teller (1939): the highest resolved series member at electron density n_e (cm^-3)."""
    return 10.0 ** ((23.26 - np.log10(n_e)) / 7.5)


def n_star(level: int, nu: np.ndarray) -> np.ndarray:
    """Effective principal quantum number reached from `level` (1-based) by a photon of frequency
    nu below the level's edge: 1/n*^2 = 1/level^2 - h nu / R_H; inf at and above the edge."""
    inv = 1.0 / level**2 - H_CGS * np.asarray(nu, float) / (RH_EV * EV_CGS)
    with np.errstate(divide="ignore"):
        return np.where(inv > 0.0, 1.0 / np.sqrt(np.maximum(inv, 1e-300)), np.inf)


def dissolved_fraction(level: int, nu: np.ndarray, n_e: float, n_h0: float, t: float,
                       charged: str = "hhl94") -> np.ndarray:
    """D(nu) = 1 - w(n*)/w_level: the share of level's photo-absorption at nu that ends in the
    continuum (1 above the edge; -> 0 far below it, where n* is a low, undisturbed level)."""
    ns = n_star(level, nu)
    finite = np.isfinite(ns)
    out = np.ones_like(ns)
    w_lo = float(w(np.array([level]), n_e, n_h0, t, charged)[0])
    out[finite] = 1.0 - w(ns[finite], n_e, n_h0, t, charged) / w_lo
    return np.clip(out, 0.0, 1.0)
