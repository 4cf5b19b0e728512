"""The AGN continuum transmitted through the dense slab: bound-free (Balmer, Paschen, ...
continua) and Balmer-line absorption by the excited hydrogen, partial covering and dust.

    F_nu = F_AGN,nu [(1 - C_f) + C_f exp(-tau_bf - tau_lines)] 10^(-0.4 A_lambda)

Balmer break B = <F_nu>(red window) / <F_nu>(blue window) (F_nu averaged over wavelength in each
window; windows in params). Wavelengths are in the AGN's rest frame; the absorber moves toward
us at v_out, so its lines (Voigt profiles: Doppler b, natural damping) are blueshifted, and so is
its bound-free opacity when the model says so (`bf_outflow`). With occupation probabilities
(Hummer & Mihalas 1988; steps.lrd_balmer.occupation) the Balmer series fades out near the
Inglis-Teller limit and the strength of the dissolved lines becomes a pseudo-continuum redward
of the edge, so the opacity is continuous across 3646 Å. Not modelled: Stark broadening (its
width grows as u^2 n_e^(2/3) and reaches the line spacing at the Inglis-Teller limit, which at
n_e <= 1e12 cm^-3 lies at u >= 30, where the spacing is already below the b = 100 km/s Doppler
width: the lines that stay discrete are Doppler-broadened).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.integrate import trapezoid
from scipy.special import voigt_profile

from steps.lrd_balmer import occupation as oc
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
WING_CUT = 1e-9   # a line's cross-section below this fraction of its peak is dropped (Opacity)


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


@dataclass(frozen=True)
class Model:
    """What the synthesised spectrum includes: params `spectrum` (the model the claims read) or an
    entry of `earlier_models` (one the claims' history compares with)."""

    n_series: int            # Balmer lines 2 -> u for u = 3..max(n_series, the atom's n_max)
    occupation: bool         # occupation probabilities w_n: lines to dissolved levels fade out and
                             # their strength becomes the dissolved Balmer pseudo-continuum
    bf_outflow: bool         # the bound-free opacity is blueshifted with the absorber, as the lines
    charged: str = "hhl94"   # charged-perturber form of w_n (steps.lrd_balmer.occupation.CHARGED)

    @classmethod
    def of(cls, s) -> Model:
        """From a config node with balmer_series_n, occupation, bf_outflow, charged_perturbers."""
        return cls(int(s.balmer_series_n), bool(s.occupation), bool(s.bf_outflow), str(s.charged_perturbers))


def line_cross_section(u: int, nu: np.ndarray, b: float, v_out: float) -> np.ndarray:
    """Cross-section (cm^2) of Balmer line 2 -> u on the grid: (pi e^2/m_e c) f_2u times a Voigt
    profile (Doppler b, natural damping), blueshifted by v_out. f-values: Wiese & Fuhr, then
    Johnson (1972)."""
    nu0 = C_CGS / balmer_wavelength(u) * (1.0 + v_out / C_CGS)       # blueshift: higher frequency
    dnu_d = nu0 * b / C_CGS
    return PI_E2_MC * oscillator_strength(2, u) * voigt_profile(nu - nu0, dnu_d / np.sqrt(2.0), natural_width(u) / (4.0 * np.pi))


@functools.cache
def natural_width(u: int) -> float:
    """Damping constant (s^-1) of Balmer line 2 -> u: the decay rates of both levels."""
    return sum(einstein_a(u, lo) for lo in range(1, u)) + einstein_a(2, 1)


class Opacity:
    """The slab's opacity per unit column on one frequency grid, precomputed once for every model:
    each Balmer line's cross-section and each excited level's bound-free cross-section (continued
    below its edge when levels dissolve). `tau` combines them with one model's columns.

    Lines: tau_2u = sigma_2u(nu) (N_2 - N_u g_2/g_u) w_u/w_2 (stimulated emission for the model
    atom's levels; higher upper levels are empty by comparison); w_u/w_2 is the probability that
    the upper level exists given the lower one does (HHL94 §2). Bound-free: tau = sum_i N_i
    sigma_i(nu) D_i(nu), D_i = 1 above the edge, 1 - w(n*)/w_i below it (the dissolved pseudo-
    continuum, steps.lrd_balmer.occupation); without occupation probabilities D_i is the step at
    the edge and the series runs undisturbed to u = n_series."""

    def __init__(self, atom: Atom, nu: np.ndarray, b: float, v_out: float, model: Model):
        self.atom, self.model = atom, model
        self.us = np.arange(3, max(model.n_series, atom.n) + 1)
        dense = np.stack([line_cross_section(int(u), nu, b, v_out) for u in self.us])
        # each line where its cross-section exceeds 1e-9 of its peak (the far Lorentz wings then
        # add < 1e-4 to any tau here: tau0 <= 1e5): a sparse (nu x lines) matrix
        self.lines = sparse.csr_matrix(np.where(dense >= WING_CUT * dense.max(axis=1, keepdims=True), dense, 0.0).T)
        self.nu_gas = nu / (1.0 + v_out / C_CGS) if model.bf_outflow else nu   # the absorber's frame
        self.bf = np.stack([atom.sigma(m, self.nu_gas, extrapolate=model.occupation) for m in range(1, atom.n)])
        # stimulated emission in the lines to the model atom's levels: N_u g_2/g_u
        self._upper = np.array([atom.g[1] / atom.g[u - 1] if u <= atom.n else 0.0 for u in self.us])
        self._upper_idx = np.minimum(self.us, atom.n) - 1

    def w_lines(self, n_e: float, n_h0: float, t: float) -> np.ndarray:
        """w_u / w_2 of every line's upper level (ones without occupation probabilities)."""
        if not self.model.occupation:
            return np.ones(len(self.us))
        w = oc.w(np.append(self.us, 2), n_e, n_h0, t, self.model.charged)
        return w[:-1] / w[-1]

    def tau(self, cols: np.ndarray, n_e: float, n_h0: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(tau_bf, tau_lines) on the grid for level columns `cols` (cm^-2, levels 1..n), electron
        and neutral-hydrogen densities (cm^-3, the perturbers) and temperature (K)."""
        col = np.maximum(cols[1] - cols[self._upper_idx] * self._upper, 0.0) * self.w_lines(n_e, n_h0, t)
        tau_l = self.lines @ col
        tau_b = np.zeros_like(self.nu_gas)
        for k, level in enumerate(range(2, self.atom.n + 1)):
            sig = self.bf[k]
            if self.model.occupation:
                sig = sig * oc.dissolved_fraction(level, self.nu_gas, n_e, n_h0, t, self.model.charged)
            tau_b += cols[level - 1] * sig
        return tau_b, tau_l


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
