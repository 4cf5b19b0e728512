"""The AGN continuum transmitted through the dense slab: bound-free (Balmer, Paschen, ...
continua) and Balmer-line absorption by the excited hydrogen, partial covering and dust.

    F_nu = F_AGN,nu [(1 - C_f) + C_f exp(-tau_bf - tau_lines)] 10^(-0.4 A_lambda)

Balmer break B = <F_nu>(red window) / <F_nu>(blue window) (F_nu averaged over wavelength in each
window; windows in params). Lines have Voigt profiles (Doppler b, natural damping), blueshifted
by the outflow velocity. Everything is in the absorber's rest frame.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid
from scipy.special import voigt_profile

from steps.lrd_balmer.atomic_data import (
    C_CGS,
    EV_CGS,
    H_CGS,
    PI_E2_MC,
    RH_EV,
    einstein_a,
    oscillator_strength,
)
from steps.lrd_balmer.hydrogen import Atom

ANGSTROM = 1e-8
KM = 1e5


def calzetti_k(lam_aa: np.ndarray, r_v: float = 4.05) -> np.ndarray:
    """Calzetti et al. (2000) eq. (4): k(lambda) for 0.12-2.2 µm; A_lambda = A_V k / R_V."""
    x = np.asarray(lam_aa, float) / 1e4                      # µm
    blue = 2.659 * (-2.156 + 1.509 / x - 0.198 / x**2 + 0.011 / x**3) + r_v
    red = 2.659 * (-1.857 + 1.040 / x) + r_v
    return np.where(x < 0.63, blue, red)


def dust_factor(lam_aa: np.ndarray, av: float, law: str) -> np.ndarray:
    if law != "calzetti":
        raise ValueError(f"unknown dust law '{law}'; valid: calzetti")
    return 10.0 ** (-0.4 * av * calzetti_k(lam_aa) / 4.05)


def balmer_lines(atom: Atom) -> list[int]:
    """Upper levels u of the Balmer lines 2 -> u the atom has (3 = Hα, 4 = Hβ, ...)."""
    return list(range(3, atom.n + 1))


def balmer_wavelength(u: int) -> float:
    """Vacuum wavelength (cm) of Balmer line 2 -> u."""
    return H_CGS * C_CGS / ((RH_EV * (0.25 - 1.0 / u**2)) * EV_CGS)


def tau_bf(atom: Atom, cols: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Bound-free optical depth of levels n >= 2 (the n = 1 edge is far bluer than the range)."""
    return sum(cols[m] * atom.sigma(m, nu) for m in range(1, atom.n))


def tau_lines(atom: Atom, cols: np.ndarray, nu: np.ndarray, b: float, v_out: float, n_series: int) -> dict[int, np.ndarray]:
    """Optical depth of each Balmer line 2 -> u, u = 3..n_series, on the grid. Lines to levels of
    the model atom have their stimulated-emission-corrected column; the higher series members
    (they blanket 3646-3800 Å, inside the break's blue window) absorb from N_2 alone, their upper
    levels being empty by comparison. f-values: Wiese & Fuhr, then Johnson (1972)."""
    out = {}
    for u in range(3, max(n_series, atom.n) + 1):
        nu0 = C_CGS / balmer_wavelength(u) * (1.0 + v_out / C_CGS)    # blueshift: higher frequency
        upper = cols[u - 1] * atom.g[1] / atom.g[u - 1] if u <= atom.n else 0.0
        col = max(0.0, cols[1] - upper)
        gamma = sum(einstein_a(u, lo) for lo in range(1, u)) + einstein_a(2, 1)   # natural width, s^-1
        dnu_d = nu0 * b / C_CGS
        prof = voigt_profile(nu - nu0, dnu_d / np.sqrt(2.0), gamma / (4.0 * np.pi))
        out[u] = col * PI_E2_MC * oscillator_strength(2, u) * prof
    return out


def window_mean(lam: np.ndarray, f: np.ndarray, lo: float, hi: float) -> float:
    sel = (lam >= lo) & (lam <= hi)
    return float(trapezoid(f[sel], lam[sel]) / (lam[sel][-1] - lam[sel][0]))


def break_strength(lam: np.ndarray, f_nu: np.ndarray, blue, red) -> float:
    return window_mean(lam, f_nu, *red) / window_mean(lam, f_nu, *blue)


def equivalent_width(lam: np.ndarray, f: np.ndarray, f_cont: np.ndarray, lam0: float, half_kms: float) -> float:
    """Absorption EW (Å, positive) within ± half_kms of lam0."""
    half = lam0 * half_kms * KM / C_CGS
    sel = (lam >= lam0 - half) & (lam <= lam0 + half)
    if sel.sum() < 2:
        return 0.0
    return float(trapezoid(1.0 - f[sel] / f_cont[sel], lam[sel]))


def line_centre(atom: Atom, u: int, v_out: float) -> float:
    """Observed (blueshifted) wavelength of Balmer line u, Å."""
    return balmer_wavelength(u) / ANGSTROM / (1.0 + v_out / C_CGS)
