"""lrd_balmer's level dissolution (steps/lrd_balmer/occupation.py, spectrum.Opacity): the
occupation probabilities of Hummer & Mihalas (1988) in their limits, and the opacity they give
across the Balmer edge.

    python -m pytest tests/test_lrd_balmer_occupation.py -q -n0
"""

from __future__ import annotations

import numpy as np
import pytest

from steps.core.errors import ConfigError
from steps.lrd_balmer import atomic_data as ad
from steps.lrd_balmer import hydrogen as hy
from steps.lrd_balmer import occupation as oc
from steps.lrd_balmer import spectrum as sp

KM = 1e5


@pytest.fixture(scope="module")
def atom():
    return hy.Atom(ad.build(6), n_freq=20)


def test_k_qm_is_continuous_and_tends_to_16_over_3n():
    assert oc.k_qm(np.array([1.0, 2.0, 3.0]))[:3].tolist() == [1.0, 1.0, 1.0]
    assert float(oc.k_qm(np.array([3.0 + 1e-9]))[0]) == pytest.approx(1.0, rel=1e-6)   # H&M eq. 4.24 at n = 3
    assert float(oc.k_qm(np.array([1e4]))[0]) == pytest.approx(16.0 / 3e4, rel=1e-3)


@pytest.mark.parametrize("charged", oc.CHARGED)
def test_w_is_one_in_a_dilute_gas(charged):
    n = np.arange(2, 101)
    assert np.all(oc.w(n, n_e=1.0, n_h0=1.0, t=8000.0, charged=charged) > 0.9999)


@pytest.mark.parametrize("charged", oc.CHARGED)
@pytest.mark.parametrize("n_e", [1e8, 1e10, 1e12])
def test_levels_dissolve_above_the_inglis_teller_limit(charged, n_e):
    """w_n ≈ 1 well below the Inglis-Teller n, ≈ 0 above it, falling through it monotonically."""
    n_it = oc.inglis_teller_n(n_e)
    w = oc.w(np.array([0.5 * n_it, n_it, 1.5 * n_it, 3 * n_it]), n_e, n_h0=n_e, t=8000.0, charged=charged)
    assert w[0] > 0.99 and 0.1 < w[1] < 0.5 and w[2] < 1e-2 and w[3] < 1e-6
    n = np.arange(2, int(3 * n_it))
    assert np.all(np.diff(oc.w(n, n_e, n_e, 8000.0, charged)) <= 0)


def test_neutral_perturbers_dissolve_levels_as_hard_spheres():
    """H&M eq. 4.71: a level dissolves when a neutral atom is likely within its radius (~n^2 a0)."""
    n_h0 = 1e16
    r_half = (np.log(2) * 3 / (4 * np.pi * n_h0)) ** (1 / 3)             # w = 1/2 at this r_n + r_1
    n_half = np.sqrt((r_half - np.sqrt(3) * ad.A0_CGS) / (np.sqrt(2.5) * ad.A0_CGS))
    assert float(oc.w_neutral(np.array([n_half]), n_h0)[0]) == pytest.approx(0.5, abs=0.01)
    assert float(oc.w_neutral(np.array([2.0]), n_h0)[0]) > 0.999
    assert float(oc.w(np.array([n_half]), n_e=0.0, n_h0=n_h0, t=8000.0)[0]) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="unknown charged-perturber form"):
        oc.w_charged(np.array([5.0]), 1e10, 8000.0, "debye")


def test_dissolved_fraction_is_one_above_the_edge_and_vanishes_far_below(atom):
    edge = atom.nu_edge[1]
    nu = edge * np.array([1.5, 1.0 + 1e-9, 1.0 - 1e-7, 0.99, 0.8, 0.6])
    d = oc.dissolved_fraction(2, nu, n_e=1e12, n_h0=1e11, t=8000.0)
    assert d[0] == 1.0 and d[1] == 1.0
    assert d[2] > 0.999                      # just below the edge: n* -> infinity, dissolved
    assert d[4] < 1e-3 and d[5] < 1e-6        # n* ≈ 4.4 and 3.2: bound
    assert np.all(np.diff(d[2:]) <= 0)
    assert oc.n_star(2, np.array([0.0]))[0] == pytest.approx(2.0)


LAM = np.linspace(3630.0, 3670.0, 4000)    # 0.01 Å: the Doppler width (b = 100 km/s) is 1.2 Å


def _tau_per_sigma2(atom, model, n_e, lam=LAM):
    nu = hy.C_CGS / (lam * 1e-8)
    cols = np.zeros(atom.n)
    cols[1] = 1.0
    tb, tl = sp.Opacity(atom, nu, 100 * KM, 0.0, model).tau(cols, n_e, n_h0=n_e, t=8000.0)
    return (tb + tl) / float(atom.sigma(1, atom.nu_edge[1]))


def _mean(lam, x, lo, hi):
    return float(x[(lam > lo) & (lam < hi)].mean())


@pytest.mark.parametrize("n_e", [1e9, 1e12])
def test_opacity_is_continuous_across_the_balmer_edge_when_levels_dissolve(atom, n_e):
    """Lines fading out + the dissolved pseudo-continuum join the bound-free opacity at the edge:
    per n = 2 atom, the opacity just redward of 3647 Å equals sigma_2 at the edge."""
    lam = LAM
    edge = hy.C_CGS / atom.nu_edge[1] * 1e8
    x = _tau_per_sigma2(atom, sp.Model(400, occupation=True, bf_outflow=True), n_e)
    blue, red = _mean(lam, x, edge - 1.0, edge - 0.01), _mean(lam, x, edge + 0.01, edge + 1.0)
    assert blue == pytest.approx(1.0, abs=0.01) and red == pytest.approx(1.0, abs=0.03)
    assert _mean(lam, x, edge + 1.0, edge + 10.0) == pytest.approx(1.0, abs=0.1)


def test_undissolved_series_matches_the_continuum_in_the_mean(atom):
    """Without dissolution a complete, Doppler-merged series continues the edge's cross-section
    (oscillator-strength density of the lines = sigma_2 at the edge: f-values and Gaunt factor
    agree to a few per cent); the series cut at u = 40 leaves a gap below the edge."""
    lam = LAM
    edge = hy.C_CGS / atom.nu_edge[1] * 1e8
    full = _tau_per_sigma2(atom, sp.Model(400, occupation=False, bf_outflow=False), 1e2)
    assert _mean(lam, full, edge + 3.0, edge + 10.0) == pytest.approx(1.0, abs=0.05)
    cut = _tau_per_sigma2(atom, sp.Model(40, occupation=False, bf_outflow=False), 1e2)
    assert _mean(lam, cut, edge + 1.0, edge + 5.0) < 0.1
    registered = sp.Opacity(atom, hy.C_CGS / (lam * 1e-8), 100 * KM, 0.0, sp.Model(3, False, False))
    assert registered.us.tolist() == [3, 4, 5, 6]                          # the model atom's lines only


def test_bf_outflow_blueshifts_the_edge_with_the_lines(atom):
    lam = LAM
    nu = hy.C_CGS / (lam * 1e-8)
    cols = np.zeros(atom.n)
    cols[1] = 1.0
    edges = []
    for shift in (False, True):
        tb, _ = sp.Opacity(atom, nu, 100 * KM, 300 * KM, sp.Model(3, False, shift)).tau(cols, 1.0, 1.0, 8000.0)
        edges.append(lam[np.flatnonzero(tb > 0).max()])
    assert edges[0] - edges[1] == pytest.approx(3647.05 * 300 / 299792.458, abs=0.02)


def test_earlier_models_are_spectrum_with_their_differences():
    from steps.core.config import compose
    from steps.lrd_balmer.earlier_model import model_named

    cfg = compose("lrd_balmer", "mini")
    assert model_named(cfg, "registered") == sp.Model(3, occupation=False, bf_outflow=False)
    assert model_named(cfg, "series40") == sp.Model(40, occupation=False, bf_outflow=False)
    assert sp.Model.of(cfg.spectrum) == sp.Model(400, occupation=True, bf_outflow=True, charged="hhl94")
    with pytest.raises(ConfigError, match="not in earlier_models"):
        model_named(cfg, "nonesuch")
