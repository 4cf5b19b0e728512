"""lrd_balmer's mechanism: atomic data against documented reference values, detailed balance,
escape probabilities, the LTE limit, the break measure and the grid's chunking (the spec's pitfalls)."""

from __future__ import annotations

import numpy as np
import pytest

from steps.core.config import compose
from steps.core.errors import ArtifactError
from steps.lrd_balmer import atomic_data as ad
from steps.lrd_balmer import grid as gridlib
from steps.lrd_balmer import hydrogen as hy
from steps.lrd_balmer import spectrum as sp
from steps.lrd_balmer.atomic import load_atom, save_atom

KM = 1e5


@pytest.fixture(scope="module")
def atom():
    return hy.Atom(ad.build(6), n_freq=120)


@pytest.mark.parametrize(("u", "lo"), sorted(ad.A_NIST))
def test_einstein_a_from_f_matches_nist(atom, u, lo):
    assert atom.a[u - 1, lo - 1] == pytest.approx(ad.A_NIST[(u, lo)], rel=1e-3)
    assert ad.einstein_a(u, lo) == pytest.approx(ad.A_NIST[(u, lo)], rel=1e-3)


@pytest.mark.parametrize("pair", sorted(ad.F_TABLE))
def test_johnson_oscillator_fit_matches_wiese_fuhr(pair):
    assert ad.johnson_f(*pair) == pytest.approx(ad.F_TABLE[pair], rel=0.01)


def test_line_wavelengths_are_hydrogen_vacuum_values(atom):
    # NIST vacuum wavelengths: Lyα 1215.67 Å, Hα 6564.6 Å, Hβ 4862.7 Å; Balmer limit 3647.0 Å
    assert atom.lam[0, 1] * 1e8 == pytest.approx(1215.67, abs=0.05)
    assert atom.lam[1, 2] * 1e8 == pytest.approx(6564.6, abs=0.2)
    assert sp.balmer_wavelength(4) * 1e8 == pytest.approx(4862.7, abs=0.2)
    assert hy.C_CGS / atom.nu_edge[1] * 1e8 == pytest.approx(3647.0, abs=0.3)


def test_photoionisation_cross_sections(atom):
    assert float(atom.sigma(1, atom.nu_edge[1])) == pytest.approx(1.40e-17, rel=0.02)  # n=2 edge
    assert float(atom.sigma(0, atom.nu_edge[0])) == pytest.approx(6.30e-18, rel=0.05)  # n=1 edge (exact 6.30e-18)
    assert float(atom.sigma(1, 0.99 * atom.nu_edge[1])) == 0.0                       # nothing below the edge
    ratio = float(atom.sigma(1, 2 * atom.nu_edge[1]) / atom.sigma(1, atom.nu_edge[1]))
    # Kramers nu^-3 times the Gaunt factor, which rises from 0.891 at the n=2 edge to 1.0 at twice it
    assert ratio == pytest.approx(0.125 / 0.891, rel=0.01)


def test_recombination_coefficients(atom):
    # Osterbrock & Ferland (2006) Table 2.1 at 1e4 K: alpha(1s) = 1.58e-13, alpha_B = 2.59e-13
    assert atom.alpha_rr(1e4)[0] == pytest.approx(1.58e-13, rel=0.06)
    assert hy.case_b(1e4) == pytest.approx(2.59e-13, rel=0.01)


def test_collision_rates_obey_johnson_magnitudes(atom):
    q = atom.q_exc(1e4)
    assert np.all(q[np.triu_indices(6, 1)] > 0)
    assert q[0, 1] > q[0, 2] > q[0, 3]                     # weaker for farther levels
    ups = q[0, 1] * 2 * np.sqrt(1e4) / 8.629e-6 / np.exp(-(atom.chi[0] - atom.chi[1]) / (hy.K_CGS * 1e4))
    assert 0.5 < ups < 1.2                                  # Υ(1-2) at 1e4 K is ≈ 0.8 (e.g. Anderson et al. 2000)
    assert np.all(atom.q_ion(1e4)[1:] > atom.q_ion(1e4)[:-1])


@pytest.mark.parametrize("log_nh", [6.0, 9.0, 12.0])
@pytest.mark.parametrize("t", [6000.0, 10000.0])
def test_collisions_alone_give_saha_boltzmann(atom, log_nh, t):
    """Detailed balance: with radiative rates off the equilibrium is LTE to 1e-8."""
    slab = hy.Slab(n_h=10**log_nh, t=t, col=1e24, u=1e-2, b=100 * KM)
    res = hy.solve(atom, slab, radiative=False)
    lte, n_p = atom.lte(slab.n_h, t, slab.x_metal)
    assert res["converged"]
    np.testing.assert_allclose(res["pops"], lte, rtol=1e-8)
    assert res["n_p"] == pytest.approx(n_p, rel=1e-8)
    assert res["pops"].sum() + res["n_p"] == pytest.approx(slab.n_h, rel=1e-12)


def test_escape_probability_limits():
    tau = np.array([0.0, 1e-10, 1.0, 1e3, 1e10, -5.0])
    beta = hy.escape(tau)
    assert beta[0] == 1.0 and beta[1] == pytest.approx(1.0) and beta[-1] == 1.0
    assert beta[2] == pytest.approx(1 - np.exp(-1.0))
    assert beta[3] == pytest.approx(1e-3) and beta[4] == pytest.approx(1e-10)


def test_lya_trapping_thermalises_n2_only_at_high_density(atom):
    """The mechanism: n2 far below Boltzmann in diffuse gas, at it in very dense gas."""
    ratios = []
    for nh in (1e6, 1e14):
        slab = hy.Slab(n_h=nh, t=8000.0, col=1e24, u=1e-4, b=100 * KM)
        res = hy.solve(atom, slab)
        assert res["converged"]
        boltz = atom.g[1] / atom.g[0] * np.exp(-(atom.chi[0] - atom.chi[1]) / (hy.K_CGS * 8000.0))
        ratios.append(res["pops"][1] / res["pops"][0] / boltz)
    assert ratios[0] < 0.01 and 0.8 < ratios[1] < 1.2


def test_without_trapping_n2_stays_subthermal(atom):
    """A thin slab (Lyα escapes) keeps n2 far below its Boltzmann value at the same density."""
    def ratio(col):
        res = hy.solve(atom, hy.Slab(n_h=1e10, t=8000.0, col=col, u=1e-4, b=100 * KM))
        return res["pops"][1] / res["pops"][0]
    assert ratio(1e12) < 0.1 * ratio(1e24)


def test_break_of_bare_continuum_is_the_slope_only():
    lam = np.geomspace(3000, 7000, 20000)
    f_nu = (1 / lam) ** -0.5
    b = sp.break_strength(lam, f_nu, (3620, 3720), (4000, 4100))
    assert b == pytest.approx((4050 / 3670) ** 0.5, rel=2e-3)
    dusty = sp.break_strength(lam, f_nu * sp.dust_factor(lam, 3.0, "calzetti"), (3620, 3720), (4000, 4100))
    assert dusty > b
    assert sp.calzetti_k(np.array([5500.0]))[0] == pytest.approx(4.05, rel=0.02)  # k(V) = R_V
    with pytest.raises(ValueError, match="unknown dust law"):
        sp.dust_factor(lam, 1.0, "smc2")


def test_n2_column_makes_a_break_and_balmer_absorption(atom):
    lam = np.geomspace(3000, 7000, 6000)
    nu = hy.C_CGS / (lam * 1e-8)
    cols = np.zeros(atom.n)
    cols[1] = 5 / 1.4e-17                                                  # tau_BaC ≈ 5
    opacity = sp.Opacity(atom, nu, 100 * KM, 300 * KM, sp.Model(30, occupation=True, bf_outflow=True))
    trans = np.exp(-sum(opacity.tau(cols, n_e=1e9, n_h0=1e10, t=8000.0)))
    f_nu = nu**-0.5
    assert sp.break_strength(lam, f_nu * trans, (3620, 3720), (4000, 4100)) > 2.0
    lam_ha = sp.line_centre(atom, 3, 300 * KM)
    assert lam_ha < 6564.6                                                 # blueshifted
    assert sp.equivalent_width(lam, trans, np.ones_like(lam), lam_ha, 3000.0) > 5.0


def test_grid_chunks_cover_every_model_once():
    cfg = compose("lrd_balmer", "mini")
    n = len(gridlib.models(cfg.grid))
    got = sorted(i for k in range(int(cfg.grid.chunks)) for i in gridlib.chunk_of(cfg.grid, k))
    assert got == list(range(n)) and n == 13 * 3 * 2 * 2
    assert gridlib.key(10.0) == "lg10_0" and gridlib.key(6.25) == "lg6_25"


def test_atom_file_is_checked(tmp_path):
    path = tmp_path / "atomic.json"
    save_atom(path, ad.build(3))
    assert load_atom(path)["n_max"] == 3
    path.write_text(path.read_text().replace('"n_max": 3', '"n_max": 4'))
    with pytest.raises(ArtifactError, match="fails its content hash"):
        load_atom(path)
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        load_atom(path)
    with pytest.raises(ArtifactError, match="missing"):
        load_atom(tmp_path / "nothing.json")
