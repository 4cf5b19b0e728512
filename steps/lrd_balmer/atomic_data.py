"""Hydrogen atomic data for the l-averaged model atom (levels n = 1..n_max), with sources.

Every number here is either a CODATA constant (scipy.constants, CODATA 2018/2022) or a value
from the cited reference; tests/test_lrd_balmer_atomic.py checks each against its documented
reference value.

- Oscillator strengths f_lu (absorption, l-averaged multiplets), n <= 6: Wiese & Fuhr (2009),
  J. Phys. Chem. Ref. Data 38, 565, as listed in the NIST Atomic Spectra Database (H I).
  For pairs beyond the table (n_max > 6, full scale only): the analytic fit of Johnson (1972),
  ApJ 174, 227, eq. (6) with his g0, g1, g2 coefficients (accurate to ~1 % against the table).
- Einstein A_ul are derived from f_lu (A_ul = 8 pi^2 e^2 nu^2 g_l f_lu / (m_e c^3 g_u)); the
  tests compare them with the NIST ASD values A21 = 4.6986e8, A31 = 5.5751e7, A32 = 4.4101e7 s^-1.
- Two-photon decay 2s -> 1s: A = 8.2283 s^-1 (Spitzer & Greenstein 1951; Goldman & Drake 1981).
- Photoionisation: Kramers' hydrogenic cross-section times the bound-free Gaunt factor of
  Menzel & Pekeris (1935) in the form of Gray (2005), The Observation and Analysis of Stellar
  Photospheres, eq. (8.5). An approximation: sigma_2 at threshold = 1.41e-17 cm^2 (exact 1.40e-17),
  sigma_1 = 6.54e-18 (exact 6.30e-18).
- Electron-impact excitation and ionisation: the semi-empirical rate coefficients of Johnson
  (1972), ApJ 174, 227 (eqs. 35-37 and 39-40), as used by the RH and MULTI codes.
- Radiative recombination to each level n <= n_max: from the photoionisation cross-section by the
  Milne relation (detailed balance; Rybicki & Lightman 1979, eq. 10.74); recombinations to levels
  above n_max: case-B total of Hui & Gnedin (1997), MNRAS 292, 27, eq. (A3), less the explicit
  levels, fed into the top level (cascade).
"""

from __future__ import annotations

import numpy as np
from scipy import constants as sc

# --- CODATA constants (scipy.constants), converted to cgs -------------------------------------
C_CGS = sc.c * 1e2                                   # cm s^-1
H_CGS = sc.h * 1e7                                   # erg s
K_CGS = sc.k * 1e7                                   # erg K^-1
ME_CGS = sc.m_e * 1e3                                # g
MP_CGS = sc.m_p * 1e3                                # g
E_ESU = sc.e * sc.c * 10.0                           # statcoulomb
EV_CGS = sc.e * 1e7                                  # erg per eV
A0_CGS = sc.physical_constants["Bohr radius"][0] * 1e2                      # cm
RYD_EV = sc.physical_constants["Rydberg constant times hc in eV"][0]        # R_inf hc, eV
RH_EV = RYD_EV / (1.0 + sc.m_e / sc.m_p)             # hydrogen's Rydberg (reduced mass), 13.598 eV
PI_E2_MC = np.pi * E_ESU**2 / (ME_CGS * C_CGS)       # 0.02654 cm^2 s^-1: classical line cross-section

# --- Wiese & Fuhr (2009) / NIST ASD: absorption oscillator strengths f_lu, l-averaged ----------
F_TABLE = {
    (1, 2): 0.41641, (1, 3): 0.079142, (1, 4): 0.029006, (1, 5): 0.013945, (1, 6): 0.0077995,
    (2, 3): 0.64108, (2, 4): 0.11938, (2, 5): 0.044694, (2, 6): 0.022105,
    (3, 4): 0.84186, (3, 5): 0.15059, (3, 6): 0.055847,
    (4, 5): 1.0377, (4, 6): 0.17923,
    (5, 6): 1.2314,
}
F_TABLE_MAX_N = 6
# NIST ASD transition probabilities (s^-1), the reference the derived A_ul are tested against.
A_NIST = {(2, 1): 4.6986e8, (3, 1): 5.5751e7, (3, 2): 4.4101e7, (4, 1): 1.2785e7, (4, 2): 8.4193e6,
          (4, 3): 8.9860e6}
A_2PHOTON_2S = 8.2283      # s^-1, 2s -> 1s (Spitzer & Greenstein 1951; Goldman & Drake 1981)

# Johnson (1972) Table 1: the Gaunt-factor expansion coefficients g0, g1, g2 of level n.


def johnson_g(n: int) -> tuple[float, float, float]:
    """(g0, g1, g2) of Johnson (1972), eq. (6)/Table 1."""
    if n == 1:
        return 1.1330, -0.4059, 0.07014
    if n == 2:
        return 1.0785, -0.2319, 0.02947
    return (0.9935 + 0.2328 / n - 0.1296 / n**2,
            -(0.6282 - 0.5598 / n + 0.5299 / n**2) / n,
            (0.3887 - 1.181 / n + 1.470 / n**2) / n**2)


def johnson_f(i: int, j: int) -> float:
    """Johnson (1972) eq. (6): the l-averaged absorption oscillator strength f_ij, i < j."""
    x = 1.0 - (i / j) ** 2
    g0, g1, g2 = johnson_g(i)
    return 32.0 / (3.0 * np.sqrt(3.0) * np.pi) * i / (j**3 * x**3) * (g0 + g1 / x + g2 / x**2)


def oscillator_strength(i: int, j: int) -> float:
    """f_ij for i < j: Wiese & Fuhr (2009) when tabulated, else Johnson's fit."""
    return F_TABLE.get((i, j), johnson_f(i, j)) if j <= F_TABLE_MAX_N else johnson_f(i, j)


def einstein_a(u: int, lo: int) -> float:
    """A_ul (s^-1) of hydrogen u -> lo from f_lo,u by the Einstein relation (any u, for the Balmer
    series beyond the model atom)."""
    nu = RH_EV * (1.0 / lo**2 - 1.0 / u**2) * EV_CGS / H_CGS
    return 8.0 * np.pi**2 * E_ESU**2 * nu**2 / (ME_CGS * C_CGS**3) * lo**2 / u**2 * oscillator_strength(lo, u)


def build(n_max: int) -> dict:
    """The model atom as plain lists (written to data/lrd_balmer/atomic.json)."""
    if not 2 <= n_max <= 30:
        raise ValueError(f"n_max must be in 2..30, got {n_max}")
    n = np.arange(1, n_max + 1)
    g = 2.0 * n**2
    chi_ev = RH_EV / n**2                                # ionisation energy of level n
    f = np.zeros((n_max, n_max))
    a = np.zeros((n_max, n_max))
    lam = np.zeros((n_max, n_max))
    for i in range(1, n_max + 1):
        for j in range(i + 1, n_max + 1):
            de = (chi_ev[i - 1] - chi_ev[j - 1]) * EV_CGS
            nu = de / H_CGS
            f[i - 1, j - 1] = oscillator_strength(i, j)
            lam[i - 1, j - 1] = lam[j - 1, i - 1] = C_CGS / nu
            # A_ul from f_lu: 8 pi^2 e^2 nu^2 / (m_e c^3) * g_l/g_u * f_lu
            a[j - 1, i - 1] = 8.0 * np.pi**2 * E_ESU**2 * nu**2 / (ME_CGS * C_CGS**3) * g[i - 1] / g[j - 1] * f[i - 1, j - 1]
    return {
        "n_max": int(n_max),
        "g": g.tolist(),
        "chi_ev": chi_ev.tolist(),
        "f_lu": f.tolist(),
        "a_ul": a.tolist(),
        "lambda_cm": lam.tolist(),
        # l-averaged n = 2: 2s holds g=2 of g=8 when the l-states are statistically populated
        # (collisions at these densities mix 2s and 2p), so the level's two-photon rate is A/4.
        "a_2photon_n2": A_2PHOTON_2S * 2.0 / 8.0,
        "constants": {"c": C_CGS, "h": H_CGS, "k": K_CGS, "m_e": ME_CGS, "m_p": MP_CGS, "e_esu": E_ESU,
                      "ev": EV_CGS, "a0": A0_CGS, "ryd_h_ev": RH_EV, "pi_e2_mc": PI_E2_MC},
        "sources": {
            "constants": "CODATA via scipy.constants",
            "f_lu": "Wiese & Fuhr 2009 (NIST ASD) for n<=6, Johnson 1972 eq. 6 beyond",
            "a_ul": "from f_lu (Einstein relation)",
            "two_photon": "Spitzer & Greenstein 1951 (8.2283 s^-1)",
            "photoionisation": "Kramers x Gaunt factor (Menzel & Pekeris 1935; Gray 2005 eq. 8.5)",
            "collisions": "Johnson 1972, ApJ 174, 227",
            "recombination": "Milne relation for n<=n_max; case B total of Hui & Gnedin 1997 for the rest",
        },
    }
