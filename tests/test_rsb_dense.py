"""rsb_dense: the mechanism (distinct-index fields by Newton's identities, the naive energy's fake
capacity collapse, the RS theory), the Monte Carlo job's determinism and resume, and bad input."""

from __future__ import annotations

import json
import math
import os
import signal
from itertools import permutations

import numpy as np
import pytest

from steps.core.cli import load
from steps.core.errors import ArtifactError, ConfigError, PaperzooError
from steps.rsb_dense import dense, extrapolate, montecarlo, rs


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_newton_identity_equals_brute_force_on_n8(k):
    rng = np.random.default_rng(k)
    for _ in range(10):
        x = rng.choice([-1, 1], size=8)
        assert dense.distinct_sum(np.array([x.sum()]), 8, k)[0] == dense.brute_distinct_sum(x, k)


def test_p4_closed_form():
    """For P = 4 the distinct ordered triples of j ≠ i sum to S³ - (3N-5) S (spec)."""
    n = 40
    s = np.arange(-(n - 1), n, 2)
    assert np.array_equal(dense.distinct_sum(s, n - 1, 3), s**3 - (3 * n - 5) * s)


def brute_energy(xi, sigma, p):
    n = xi.shape[1]
    tot = sum(np.prod(xi[mu, list(t)] * sigma[list(t)]) for mu in range(len(xi)) for t in permutations(range(n), p))
    return -tot / (2 * dense.falling(n - 1, p - 1))


def test_single_flip_energy_change_is_exactly_two_sigma_h():
    """The distinct-index form has no self-interaction: ΔE = 2 σ_i h_i, the field from Batch."""
    rng = np.random.default_rng(0)
    p, n, k = 4, 7, 3
    xi = dense.random_patterns(rng, k, n)
    sigma = rng.choice([-1, 1], size=n).astype(np.int64)
    batch = dense.Batch(xi[None], sigma[None], p)
    e0 = brute_energy(xi, sigma, p)
    fields = dense.all_fields(xi, sigma, p)
    for i in range(n):
        flipped = sigma.copy()
        flipped[i] *= -1
        h, _ = batch.field(i)
        assert h[0] == fields[i]
        assert brute_energy(xi, flipped, p) - e0 == pytest.approx(2 * sigma[i] * h[0] * batch.scale)


def _naive_dynamics(xi, sigma, p, sweeps=20):
    sigma = sigma.copy()
    for _ in range(sweeps):
        flips = 0
        for i in range(len(sigma)):
            new = int(np.sign(dense.naive_field(xi, sigma, i, p))) or sigma[i]
            flips += new != sigma[i]
            sigma[i] = new
        if not flips:
            break
    return sigma


def test_naive_energy_pins_the_dynamics_where_the_distinct_form_retrieves():
    """Spec pitfall: with the repeated-index (naive) energy every spin feels a self-coupling
    ≈ 6αN σ_i (P = 4) that outweighs the signal, so T = 0 dynamics cannot correct a single
    error of the corrupted start; the distinct-index network at the same load, half its
    capacity, corrects them all."""
    rng = np.random.default_rng(1)
    p, n = 4, 32
    k = round(0.5 * rs.critical(4)["alpha_c"] * dense.falling(n - 1, 3))
    xi = dense.random_patterns(rng, k, n)
    sigma = dense.corrupt(rng, xi[0], 0.1)
    batch = dense.Batch(xi[None], sigma[None], p)
    for _ in range(50):
        if batch.zero_t_sweep(np.arange(n)) == 0:
            break
    assert batch.overlap()[0] == 1.0
    naive = _naive_dynamics(xi, sigma, p)
    assert np.array_equal(naive, sigma)  # frozen at the corrupted start (m = 0.8)
    # the self-coupling: the naive field minus the distinct one, ≈ 3KN σ_i in integer units
    self_part = np.array([dense.naive_field(xi, sigma, i, p) for i in range(n)]) - dense.all_fields(xi, sigma, p)
    assert np.all(np.sign(self_part) == sigma)
    assert np.mean(np.abs(self_part)) == pytest.approx(3 * k * n, rel=0.15)


def test_rs_capacities():
    assert rs.critical(2, ags=True)["alpha_c"] == pytest.approx(0.138, abs=0.001)
    assert rs.critical(2)["alpha_c"] == pytest.approx(2 / math.pi)
    assert rs.critical(4)["alpha_c"] == pytest.approx(0.03298, abs=1e-4)
    assert rs.critical(6)["alpha_c"] == pytest.approx(0.001314, abs=1e-5)
    assert rs.m_zero_t(0.5 * rs.critical(4)["alpha_c"], 4) > rs.critical(4)["m_c"]
    assert rs.m_zero_t(1.01 * rs.critical(4)["alpha_c"], 4) == 0.0
    assert rs.ags_reaction(0.13)["r"] == pytest.approx(1.21, abs=0.01)


def test_finite_t_solver_reaches_the_zero_t_limit():
    a = 0.9 * rs.critical(4)["alpha_c"]
    assert rs.solve_finite_t(a, 1e-3, 4, nodes=48)["m"] == pytest.approx(rs.m_zero_t(a, 4), abs=1e-3)
    a2 = 0.1
    assert rs.solve_finite_t(a2, 0.01, 2, nodes=48, ags=True)["m"] == pytest.approx(rs.m_zero_t(a2, 2, ags=True), abs=2e-3)


def test_crossing_and_finite_size_fit():
    alphas = np.array([0.1, 0.2, 0.3])
    assert extrapolate.crossing(alphas, np.array([1.0, 0.8, 0.2]), 0.5) == pytest.approx(0.25)
    assert extrapolate.crossing(alphas, np.array([1.0, 0.9, 0.8]), 0.5) is None  # beyond the grid
    assert extrapolate.crossing(alphas, np.array([0.4, 0.3, 0.2]), 0.5) is None  # before it
    ns = [10, 20, 40, 80]
    fit = extrapolate.fit_limit(ns, [0.03 + 0.2 / n for n in ns], [0.001] * 4, 1.0, 1e-6)
    assert fit["alpha_inf"] == pytest.approx(0.03) and fit["slope"] == pytest.approx(0.2)
    assert fit["alpha_inf_err"] > 0


def _mc_cfg(tmp_path, system="p4", n=12):
    return load("rsb_dense", "montecarlo", ["scale=smoke", f"io.system={system}", f"io.n={n}",
                                            f"io.out={tmp_path / f'{system}_n{n}.json'}"])


def test_montecarlo_is_deterministic_and_resumes_after_sigterm(tmp_path, monkeypatch):
    cfg = _mc_cfg(tmp_path / "a")
    montecarlo.main(cfg)
    whole = json.loads((tmp_path / "a" / "p4_n12.json").read_text())["tasks"]

    cfg_b = _mc_cfg(tmp_path / "b")
    real, calls = montecarlo.run_task, []

    def stopped_once(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # TrainLoop finishes this task, checkpoints, stops
        return real(*args)

    monkeypatch.setattr(montecarlo, "run_task", stopped_once)
    with pytest.raises(PaperzooError, match="SIGTERM"):
        montecarlo.main(cfg_b)
    assert (tmp_path / "b" / "p4_n12.json.resume.pt").exists()
    monkeypatch.setattr(montecarlo, "run_task", real)
    montecarlo.main(cfg_b)
    resumed = json.loads((tmp_path / "b" / "p4_n12.json").read_text())["tasks"]
    assert resumed == whole
    assert not (tmp_path / "b" / "p4_n12.json.resume.pt").exists()


def test_bad_input_gives_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown system 'p5'"):
        montecarlo.main(_mc_cfg(tmp_path, "p5"))
    with pytest.raises(ConfigError, match="N=13 is not among"):
        montecarlo.main(_mc_cfg(tmp_path, "p4", 13))
    mc = tmp_path / "mc"
    mc.mkdir()
    cfg = load("rsb_dense", "extrapolate", ["scale=smoke", f"io.mc={mc}", f"io.results={tmp_path / 'res'}"])
    with pytest.raises(ArtifactError, match="missing Monte Carlo result"):
        extrapolate.main(cfg)
    (mc / "p2_n100.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        extrapolate.main(cfg)
    with pytest.raises(ConfigError, match="unknown key 'mc.drawz'"):
        load("rsb_dense", "montecarlo", ["mc.drawz=3"])


def test_crosstalk_estimator_is_unbiased_at_the_pattern():
    """At σ = ξ¹ the other patterns' crosstalk has mean square (K-1)(P-1)!/(N-1)_{P-1} exactly
    in expectation; the variance about each network's site mean would be ≈ (1 - P/N) low."""
    rng = np.random.default_rng(3)
    p, n, k = 4, 16, 60  # the crosstalk is heavy-tailed (E ~ S³): many draws for a 5 % test
    rec = [dense.crosstalk(xi, xi[0].astype(np.int64), p) for xi in (dense.random_patterns(rng, k, n) for _ in range(1500))]
    bare = rec[0]["bare"]
    assert bare == pytest.approx((k - 1) * 6 / dense.falling(n - 1, 3))
    assert np.mean([r["msq"] for r in rec]) / bare == pytest.approx(1.0, abs=0.05)
    assert np.mean([r["var"] for r in rec]) / bare == pytest.approx(1 - p / n, abs=0.06)


def test_one_step_rsb_limits_and_sk_anchor():
    """1RSB at x = 1 is the paramagnet and at x → 0 the RS solution; for SK (P = 2, J = 1)
    the RS entropy at T = 0.1 is negative and 1RSB raises the free energy (Parisi)."""
    from steps.rsb_dense import rsb

    beta, j2, p, q = 5.0, 0.6, 4, 0.9
    assert rsb.phi_1rsb(q, 1.0, beta, j2, p) == pytest.approx(beta**2 * j2 / 4 + math.log(2), rel=1e-9)
    assert rsb.phi_1rsb(q, 1e-6, beta, j2, p) == pytest.approx(rsb.phi_rs(q, beta, j2, p), abs=1e-4)
    sk = rsb.spin_glass(2, 1.0, 0.1)  # J² = 2!·1/2 = 1
    assert sk["s_rs"] < 0 < sk["f_gap"]
    assert -0.80 < sk["f_rs"] < sk["f_1rsb"] < -0.76  # SK ground state: RS -0.798, Parisi -0.763
