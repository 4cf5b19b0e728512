"""Statistical equilibrium of an l-averaged hydrogen atom (levels 1..N plus the proton) in a
uniform slab of density n_H and column N_H, lit by an AGN continuum f_nu ∝ nu^alpha with
ionisation parameter U = Phi_H / (n_H c).

Processes (rates per particle, s^-1):
- spontaneous decay A_ul times the escape probability beta(tau) = (1 - e^-tau)/tau of the line,
  tau from the slab column of the lower level (Sobolev/escape-probability trapping; Inayoshi &
  Maiolino 2025 §2: Lyα trapping is what lets collisions fill n = 2); n = 2 also decays by two
  photons (8.2283/4 s^-1, l-averaged);
- electron-impact excitation, de-excitation (detailed balance), ionisation and three-body
  recombination (Johnson 1972);
- photoionisation by the AGN continuum, averaged over the slab: the mean rate per atom carries
  the factor (1 - e^-tau_nu)/tau_nu of the slab's bound-free optical depth (photon conservation);
- radiative recombination (Milne relation), times the escape probability of the recombination
  photon at the level's threshold (on-the-spot: a Lyman-continuum photon in a thick slab ionises
  again), plus the case-B remainder for levels above N into level N.

Not modelled (stated in the report): H^- opacity, H-H (Drawin) collisions, line pumping by the
continuum, metals other than a fixed electron floor, temperature from thermal balance (T is given).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import trapezoid
from scipy.special import exp1, expn

from steps.lrd_balmer.atomic_data import (
    A0_CGS,
    C_CGS,
    E_ESU,
    EV_CGS,
    H_CGS,
    K_CGS,
    ME_CGS,
    PI_E2_MC,
    johnson_g,
)


class Atom:
    """The model atom of data/lrd_balmer/atomic.json with its rate functions."""

    def __init__(self, data: dict, n_freq: int = 200, e_max_ev: float = 1000.0):
        self.n = int(data["n_max"])
        self.g = np.asarray(data["g"], float)
        self.chi = np.asarray(data["chi_ev"], float) * EV_CGS          # ionisation energy, erg
        self.f = np.asarray(data["f_lu"], float)
        self.a = np.asarray(data["a_ul"], float)
        self.lam = np.asarray(data["lambda_cm"], float)
        self.a2g = float(data["a_2photon_n2"])
        self.levels = np.arange(1, self.n + 1)
        self.nu_edge = self.chi / H_CGS
        self.nu_max = e_max_ev * EV_CGS / H_CGS
        # per-level frequency grids from its edge to nu_max (log-spaced), and every level's
        # cross-section on each grid, for the photoionisation integrals
        self.grids = [np.geomspace(ne, self.nu_max, n_freq) for ne in self.nu_edge]
        self.sig_on = [np.stack([self.sigma(m, nu) for m in range(self.n)]) for nu in self.grids]

    # --- photoionisation ------------------------------------------------------------------
    def sigma(self, level: int, nu: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """Bound-free cross-section (cm^2) of level index `level` (0-based): Kramers x Gaunt.
        sigma = 7.91e-18 n (nu_n/nu)^3 g_bf, g_bf = 1 - 0.3456/(lam R)^(1/3) (lam R / n^2 - 1/2)
        (Menzel & Pekeris 1935 in Gray 2005 eq. 8.5). Zero below the edge, unless `extrapolate`:
        the same formula continued redward, which the dissolved fraction of the occupation
        probability formalism multiplies (steps.lrd_balmer.occupation)."""
        nu = np.asarray(nu, float)
        n = level + 1
        kramers = 64.0 * np.pi**4 * ME_CGS * E_ESU**10 / (
            3.0 * np.sqrt(3.0) * C_CGS * H_CGS**6 * n**5 * np.maximum(nu, 1e-30) ** 3)
        lam_r = (self.nu_edge[0] / np.maximum(nu, 1e-30))        # lambda R in units of the n=1 edge
        gbf = 1.0 - 0.3456 / np.cbrt(lam_r) * (lam_r / n**2 - 0.5)
        if extrapolate:
            return kramers * gbf
        return np.where(nu >= self.nu_edge[level] * (1 - 1e-12), kramers * gbf, 0.0)

    # --- collisions (Johnson 1972) ---------------------------------------------------------
    def q_exc(self, t: float) -> np.ndarray:
        """Upward rate coefficients q_ij (cm^3 s^-1), i < j (Johnson 1972 eqs. 35-37)."""
        q = np.zeros((self.n, self.n))
        kt = K_CGS * t
        vth = np.sqrt(8.0 * kt / (np.pi * ME_CGS))
        for i in range(1, self.n + 1):
            r_i = 0.45 if i == 1 else 1.94 * i**-1.57
            b_i = -0.603 if i == 1 else (4.0 - 18.63 / i + 36.24 / i**2 - 28.09 / i**3) / i
            g0, g1, g2 = johnson_g(i)
            for j in range(i + 1, self.n + 1):
                x = 1.0 - (i / j) ** 2
                y = (self.chi[i - 1] - self.chi[j - 1]) / kt
                z = r_i * x + y
                f_ij = 32.0 / (3.0 * np.sqrt(3.0) * np.pi) * i / (j**3 * x**3) * (g0 + g1 / x + g2 / x**2)
                a_ij = 2.0 * i**2 / x * f_ij
                b_ij = 4.0 * i**4 / (j**3 * x**2) * (1.0 + 4.0 / (3.0 * x) + b_i / x**2)
                t1 = a_ij * ((0.5 + 1.0 / y) * exp1(y) - (0.5 + 1.0 / z) * exp1(z))
                t2 = (b_ij - a_ij * np.log(2.0 * i**2 / x)) * (expn(2, y) / y - expn(2, z) / z)
                q[i - 1, j - 1] = vth * 2.0 * np.pi * A0_CGS**2 * y**2 * i**2 / x * (t1 + t2)
        return q

    def q_ion(self, t: float) -> np.ndarray:
        """Collisional ionisation rate coefficients (cm^3 s^-1) of each level (Johnson 1972 eq. 39-40)."""
        kt = K_CGS * t
        vth = np.sqrt(8.0 * kt / (np.pi * ME_CGS))
        out = np.zeros(self.n)
        for i in range(1, self.n + 1):
            r_i = 0.45 if i == 1 else 1.94 * i**-1.57
            b_i = -0.603 if i == 1 else (4.0 - 18.63 / i + 36.24 / i**2 - 28.09 / i**3) / i
            g0, g1, g2 = johnson_g(i)
            y = self.chi[i - 1] / kt
            z = r_i + y
            a_n = 32.0 / (3.0 * np.sqrt(3.0) * np.pi) * i * (g0 / 3.0 + g1 / 4.0 + g2 / 5.0)
            b_n = 2.0 * i**2 / 3.0 * (5.0 + b_i)

            def xi(v):
                return np.exp(-v) / v - 2.0 * exp1(v) + expn(2, v)

            t1 = a_n * (exp1(y) / y - exp1(z) / z)
            t2 = (b_n - a_n * np.log(2.0 * i**2)) * (xi(y) - xi(z))
            out[i - 1] = vth * 2.0 * np.pi * A0_CGS**2 * y**2 * i**2 * (t1 + t2)
        return out

    # --- detailed balance --------------------------------------------------------------------
    def saha_phi(self, t: float) -> np.ndarray:
        """n_n* / (n_e n_p) in LTE (cm^3): g_n/2 (h^2 / 2 pi m_e k T)^(3/2) exp(chi_n/kT)."""
        kt = K_CGS * t
        return self.g / 2.0 * (H_CGS**2 / (2.0 * np.pi * ME_CGS * kt)) ** 1.5 * np.exp(self.chi / kt)

    def alpha_rr(self, t: float) -> np.ndarray:
        """Radiative recombination coefficient to each level (cm^3 s^-1), Milne relation:
        alpha_n = Phi_n(T) 8 pi / c^2 ∫ sigma_n nu^2 exp(-h nu/kT) dnu."""
        kt = K_CGS * t
        out = np.zeros(self.n)
        phi = self.saha_phi(t)
        for m in range(self.n):
            e0 = self.nu_edge[m]
            nu = e0 + np.linspace(0.0, 40.0 * kt / H_CGS, 4001)        # e^-40: converged
            integrand = self.sigma(m, nu) * nu**2 * np.exp(-H_CGS * (nu - e0) / kt)
            out[m] = phi[m] * np.exp(-H_CGS * e0 / kt) * 8.0 * np.pi / C_CGS**2 * trapezoid(integrand, nu)
        return out

    def lte(self, n_h: float, t: float, x_metal: float = 0.0) -> tuple[np.ndarray, float]:
        """Saha-Boltzmann populations (levels 1..N) and n_p with charge balance
        n_e = n_p + x_metal n_H and n_H = sum n_n + n_p."""
        s = self.saha_phi(t).sum()
        m = x_metal * n_h
        # n_p (1 + s (n_p + m)) = n_H  ->  s n_p^2 + (1 + s m) n_p - n_H = 0
        bq = 1.0 + s * m
        n_p = 2.0 * n_h / (bq + np.sqrt(bq**2 + 4.0 * s * n_h))
        return self.saha_phi(t) * (n_p + m) * n_p, float(n_p)


def escape(tau: np.ndarray) -> np.ndarray:
    """Escape probability beta = (1 - e^-tau)/tau (1 for tau -> 0; tau < 0 (masing) -> 1)."""
    tau = np.asarray(tau, float)
    small = tau < 1e-8
    safe = np.where(small, 1.0, tau)
    return np.where(small, 1.0, -np.expm1(-safe) / safe)


@dataclass(frozen=True)
class Slab:
    """One model: density (cm^-3), temperature (K), column (cm^-2), ionisation parameter,
    Doppler b (cm/s), continuum slope alpha (f_nu ∝ nu^alpha), metal electron floor."""

    n_h: float
    t: float
    col: float
    u: float
    b: float
    alpha: float = -0.5
    x_metal: float = 1e-4


def continuum_norm(atom: Atom, slab: Slab) -> float:
    """K of F_nu = K nu^alpha such that the H-ionising photon flux is U n_H c."""
    nu = atom.grids[0]
    phi_per_k = trapezoid(nu**slab.alpha / (H_CGS * nu) * nu, np.log(nu))
    return slab.u * slab.n_h * C_CGS / phi_per_k


def line_kappa(atom: Atom, b: float) -> np.ndarray:
    """Line-centre cross-section (cm^2) of each l->u pair for a Doppler profile of width b:
    (pi e^2 / m_e c) f lambda / (sqrt(pi) b)."""
    return PI_E2_MC * atom.f * atom.lam / (np.sqrt(np.pi) * b)


def solve(atom: Atom, slab: Slab, radiative: bool = True, max_iter: int = 400, tol: float = 1e-10,
          damping: float = 0.6) -> dict:
    """Statistical equilibrium of the slab. Returns populations (cm^-3), n_p, n_e, line optical
    depths, convergence. With radiative=False only collisions act (the LTE/detailed-balance test)."""
    n = atom.n
    length = slab.col / slab.n_h
    q_up = atom.q_exc(slab.t)
    kt = K_CGS * slab.t
    de = atom.chi[:, None] - atom.chi[None, :]          # E_j - E_i for i<j: chi_i - chi_j > 0
    boltz = np.where(de > 0, np.exp(-np.clip(de, 0, None) / kt), 0.0)
    q_down = np.zeros((n, n))
    iu, ju = np.triu_indices(n, 1)
    q_down[ju, iu] = q_up[iu, ju] * atom.g[iu] / atom.g[ju] / boltz[iu, ju]
    qi = atom.q_ion(slab.t)
    phi = atom.saha_phi(slab.t)
    kappa = line_kappa(atom, slab.b)
    knorm = continuum_norm(atom, slab) if radiative else 0.0
    alpha = atom.alpha_rr(slab.t) if radiative else np.zeros(n)
    if radiative:
        alpha_b_rest = max(0.0, case_b(slab.t) - alpha[1:].sum())
    pops, n_p = atom.lte(slab.n_h, slab.t, slab.x_metal)
    x = np.append(pops, n_p)
    converged, it, change = False, 0, np.inf
    for it in range(1, max_iter + 1):
        pops, n_p = x[:n], x[n]
        n_e = n_p + slab.x_metal * slab.n_h
        p = np.zeros((n + 1, n + 1))                  # p[i, j]: rate per particle i -> j
        p[:n, :n] += n_e * (q_up + q_down)
        p[:n, n] += n_e * qi
        p[n, :n] += n_e**2 * qi * phi                # three-body recombination
        tau_l = np.zeros((n, n))
        if radiative:
            # line optical depths over the slab (stimulated emission corrected) and escape
            inv = pops[iu] - pops[ju] * atom.g[iu] / atom.g[ju]
            tau_l[iu, ju] = kappa[iu, ju] * np.maximum(inv, 0.0) * length
            beta = escape(tau_l[iu, ju])
            p[ju, iu] += atom.a[ju, iu] * beta
            p[1, 0] += atom.a2g
            rates, tau_edge = photo_rates(atom, pops, length, knorm, slab.alpha)
            p[:n, n] += rates
            p[n, :n] += n_e * alpha * escape(tau_edge)
            p[n, n - 1] += n_e * alpha_b_rest
        x_new = _linear_solve(p, slab.n_h, x)
        x_new = np.maximum(x_new, 1e-300 * slab.n_h)
        change = float(np.max(np.abs(np.log(x_new) - np.log(x))))
        w = 1.0 if it < 3 else damping
        x = np.exp(w * np.log(x_new) + (1.0 - w) * np.log(x))
        if change < tol:
            converged = True
            break
    pops, n_p = x[:n], x[n]
    return {"pops": pops, "n_p": n_p, "n_e": n_p + slab.x_metal * slab.n_h, "tau_lines": tau_l,
            "converged": converged, "iterations": it, "change": change}


def photo_rates(atom: Atom, pops: np.ndarray, length: float, knorm: float, alpha: float):
    """Slab-averaged photoionisation rate of each level and the bound-free optical depth at each
    level's edge."""
    n = atom.n
    rates = np.zeros(n)
    tau_edge = np.zeros(n)
    col = pops * length
    for m in range(n):
        nu = atom.grids[m]
        tau = col @ atom.sig_on[m]                   # slab bound-free optical depth on m's grid
        tau_edge[m] = tau[0]
        flux = knorm * nu**alpha / (H_CGS * nu)      # photons cm^-2 s^-1 Hz^-1
        integrand = flux * atom.sig_on[m][m] * escape(tau) * nu
        rates[m] = trapezoid(integrand, np.log(nu))
    return rates, tau_edge


def case_b(t: float) -> float:
    """Case-B recombination coefficient (cm^3 s^-1), Hui & Gnedin (1997) eq. (A3)."""
    lam = 2.0 * 157807.0 / t
    return 2.753e-14 * lam**1.5 / (1.0 + (lam / 2.740) ** 0.407) ** 2.242


def _linear_solve(p: np.ndarray, n_h: float, x_prev: np.ndarray) -> np.ndarray:
    """Solve sum_j x_j p[j, i] - x_i sum_j p[i, j] = 0 with sum x = n_H, scaling columns by the
    previous populations and rows by their largest entry (populations span ~30 decades)."""
    m = p.T - np.diag(p.sum(axis=1))
    m[-1, :] = 1.0
    rhs = np.zeros(len(x_prev))
    rhs[-1] = n_h
    s = x_prev
    ms = m * s[None, :]
    r = np.max(np.abs(ms), axis=1)
    r[r == 0] = 1.0
    y = np.linalg.solve(ms / r[:, None], rhs / r)
    return y * s
