"""linf_regression: the sketches, the error metrics, the hard instance's mechanism, the
aggregation, bad inputs, the fetch code against a local fixture, and the smoke DAG end to end.
Nothing here checks that a claim holds."""

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.sparse

from steps.core import claims as claimslib
from steps.core import config
from steps.core.errors import ArtifactError, ConfigError
from steps.linf_regression import aggregate, fetch, problems, sketches
from steps.linf_regression.common import cell, rng_for
from tests.conftest import ROOT, copy_repo, patient, smoke_copy, snakemake

PAPER = "linf_regression"


# ---------------------------------------------------------------- the sketches


@pytest.mark.parametrize("n", [1, 2, 64, 256])
def test_fwht_equals_scipy_hadamard(n):
    x = np.random.default_rng(0).standard_normal((n, 3))
    assert np.allclose(sketches.fwht(x), scipy.linalg.hadamard(n) @ x, atol=1e-10)
    assert np.allclose(sketches.fwht(x[:, 0]), scipy.linalg.hadamard(n) @ x[:, 0], atol=1e-10)


def test_fwht_refuses_a_length_that_is_no_power_of_two():
    with pytest.raises(ValueError, match="power-of-two"):
        sketches.fwht(np.ones(12))


def test_srht_with_all_rows_is_orthogonal_and_pads_to_a_power_of_two():
    """m = n' distinct rows: S = P H D / sqrt(n') is orthogonal, so sketch-and-solve is exact
    (the sqrt(n/m) scaling is right); n = 100 is padded to 128 inside the sketch."""
    rng = np.random.default_rng(1)
    A, b = rng.standard_normal((100, 5)), rng.standard_normal(100)
    SM = sketches.apply({"kind": "srht"}, np.column_stack([A, b]), 128, rng)
    assert SM.shape == (128, 6)
    assert np.allclose(SM.T @ SM, np.column_stack([A, b]).T @ np.column_stack([A, b]))
    x = np.linalg.lstsq(SM[:, :5], SM[:, 5], rcond=None)[0]
    assert np.allclose(x, np.linalg.lstsq(A, b, rcond=None)[0])


def test_srht_draws_random_signs():
    """A deterministic Hadamard subsample is not SRHT: without D, S e_1 is the constant
    1/sqrt(m) (row 0 of H is all ones); with D its sign is random, mean ≈ 0 over draws."""
    e1 = np.zeros((64, 1))
    e1[0] = 1.0
    firsts = [sketches.apply({"kind": "srht"}, e1, 16, rng_for(0, "t", trial=k))[0, 0] for k in range(200)]
    assert set(np.sign(firsts)) == {-1.0, 1.0}
    assert abs(np.mean(firsts)) < 0.3 / math.sqrt(16)


def test_countsketch_has_one_signed_unit_per_column():
    S = sketches.apply({"kind": "countsketch"}, np.eye(50), 10, np.random.default_rng(2))
    assert S.shape == (10, 50)
    assert np.all((S != 0).sum(axis=0) == 1) and set(np.unique(S[S != 0])) <= {-1.0, 1.0}


@pytest.mark.parametrize("s", [1, 2, 4])
def test_osnap_has_s_nonzeros_per_column_one_per_block(s):
    S = sketches.osnap_matrix(200, 40, s, np.random.default_rng(3)).toarray()
    nz = S != 0
    assert np.all(nz.sum(axis=0) == s)
    assert np.allclose(np.abs(S[nz]), 1 / math.sqrt(s))
    bounds = np.linspace(0, 40, s + 1).astype(int)
    for k in range(s):  # exactly one nonzero of each column in each block of rows
        assert np.all(nz[bounds[k] : bounds[k + 1]].sum(axis=0) == 1)


def test_leverage_scores_sum_to_rank_and_sampling_reweights():
    A = np.random.default_rng(4).standard_normal((300, 7))
    lev = sketches.leverage_scores(A)
    assert lev.sum() == pytest.approx(7.0) and np.all((lev > 0) & (lev <= 1 + 1e-12))
    x = np.random.default_rng(5).standard_normal((300, 1))
    norms = [np.sum(sketches.apply({"kind": "leverage"}, x, 150, rng_for(1, "l", trial=k), scores=lev) ** 2) for k in range(400)]
    assert np.mean(norms) / float(np.sum(x ** 2)) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("kind", ["gaussian", "srht", "countsketch", "osnap", "uniform"])
def test_every_sketch_is_unbiased_in_norm(kind):
    x = np.random.default_rng(6).standard_normal((256, 1))
    norms = [np.sum(sketches.apply({"kind": kind}, x, 64, rng_for(2, kind, trial=k)) ** 2) for k in range(300)]
    assert np.mean(norms) / float(np.sum(x ** 2)) == pytest.approx(1.0, abs=0.05)


def test_gaussian_sketch_in_column_blocks_equals_one_block():
    M = np.random.default_rng(7).standard_normal((100, 3))
    a = sketches.apply({"kind": "gaussian", "block_cols": 100}, M, 20, np.random.default_rng(8))
    b = sketches.apply({"kind": "gaussian", "block_cols": 1000}, M, 20, np.random.default_rng(8))
    assert a.shape == (20, 3) and np.allclose(a, b)


def test_unknown_sketch_kind_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown sketch kind 'fjlt'; valid: .*srht"):
        sketches.apply({"kind": "fjlt"}, np.ones((4, 2)), 2, np.random.default_rng(0))


# ---------------------------------------------------------------- instances and errors


def test_errors_normalise_by_the_residual_and_the_smallest_singular_value():
    """E_inf = √d ||e||∞ σ_min / ||r||: A = diag(2, 4) stacked on zeros has ||A†|| = 1/2."""
    A = np.vstack([np.diag([2.0, 4.0]), np.zeros((3, 2))])
    b = np.array([2.0, 4.0, 3.0, 0.0, 4.0])  # x* = (1, 1), r = (0, 0, 3, 0, 4), ||r|| = 5
    ex = problems.exact(A, b)
    assert np.allclose(ex["x_star"], [1, 1]) and float(ex["r_norm"]) == pytest.approx(5.0)
    assert float(ex["sigma_min"]) == pytest.approx(2.0)
    err = problems.errors(np.array([1.5, 1.0]), ex["x_star"], 5.0, 2.0)
    assert err["E_inf"] == pytest.approx(math.sqrt(2) * 0.5 / 2.5)
    assert err["rho"] == pytest.approx(math.sqrt(2))  # all the error on one coordinate: √d
    assert err["argmax"] == 0


def test_lstsq_matches_normal_equations_and_identity_sketch_is_exact():
    A, b = problems.make({"kind": "gaussian", "n": 200, "d": 6, "noise": 1.0}, np.random.default_rng(9))
    ex = problems.exact(A, b)
    assert np.allclose(ex["x_star"], np.linalg.solve(A.T @ A, A.T @ b))
    x = problems.sketch_and_solve({"kind": "identity"}, A, b, 200, np.random.default_rng(0))
    assert problems.errors(x, ex["x_star"], float(ex["r_norm"]), float(ex["sigma_min"]))["E_inf"] < 1e-10


def test_hard_instance_has_identity_rows_and_heavy_residuals():
    spec = {"kind": "coherent_spiky", "n": 300, "d": 6, "c": 1.0, "tail": 0.01, "k_heavy": 4, "heavy": 10.0, "noise": 0.0}
    A, b = problems.make(spec, np.random.default_rng(10))
    assert np.allclose(A[:6], np.eye(6)) and np.abs(A[6:]).max() < 0.1
    r = b - A @ problems.exact(A, b)["x_star"]
    assert (np.abs(r) > 5).sum() == 4 and np.all(np.abs(r[:6]) < 1)


def test_a_hash_collision_of_a_heavy_row_with_an_identity_row_moves_one_coordinate():
    """The hard instance's mechanism (after PSW17): a sparse S that sums heavy residual row j
    into the bucket of identity row i shifts x'_i by ≈ heavy/c, and only it (ρ ≈ √d)."""
    spec = {"kind": "coherent_spiky", "n": 400, "d": 8, "c": 1.0, "tail": 0.01, "k_heavy": 1, "heavy": 10.0, "noise": 0.0}
    A, b = problems.make(spec, np.random.default_rng(11))
    ex = problems.exact(A, b)
    j = int(np.argmax(np.abs(b - A @ ex["x_star"])))
    m = 100
    rows = np.arange(400) % m  # identity row i → bucket i; every other row spread over the buckets
    rows[j] = 3  # collide the heavy row with identity row 3
    S = scipy.sparse.csr_matrix((np.ones(400), (rows, np.arange(400))), shape=(m, 400))
    x = np.linalg.lstsq(S @ A, S @ b, rcond=None)[0]
    err = problems.errors(x, ex["x_star"], float(ex["r_norm"]), float(ex["sigma_min"]))
    assert err["argmax"] == 3 and err["rho"] > 0.9 * math.sqrt(8)
    assert abs(x[3] - ex["x_star"][3]) > 3.0


def test_sketch_rows_follow_the_grid_and_the_cap():
    assert problems.sketch_rows(4, 4096, 32, 0.5) == math.ceil(4 * 32 * math.log(4096))
    assert problems.sketch_rows(16, 4096, 32, 0.5) == 2048


def test_trials_do_not_depend_on_the_shard_split():
    from steps.linf_regression import instances, sketch_solve

    base = ["grid.trials=4", "grid.c=[2]", "sketches.use=[srht,countsketch]"]
    cfg = config.compose(PAPER, "smoke", base, phase="instances")
    inst = instances.build(cfg, "hard")
    one = sketch_solve.run_trials(config.compose(PAPER, "smoke", base, phase="sketch_solve"), inst)
    parts = [sketch_solve.run_trials(config.compose(PAPER, "smoke", [*base, "grid.shards=2", f"grid.shard={s}"],
                                                    phase="sketch_solve"), inst) for s in (0, 1)]
    two = pd.concat(parts).sort_values(["sketch", "trial"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one.sort_values(["sketch", "trial"]).reset_index(drop=True), two)


# ---------------------------------------------------------------- aggregation


def _fake_trials(rng) -> pd.DataFrame:
    rows = []
    for inst in ("benign", "hard"):
        for sk in ("gaussian", "countsketch"):
            for c, m in ((1, 100), (4, 400), (16, 1600)):
                for t in range(200):
                    e = rng.lognormal(0.0, 0.2) / math.sqrt(m)
                    if inst == "hard" and sk == "countsketch" and t % 4 == 0:
                        e *= 100  # every 4th trial fails
                    rows.append({"instance": inst, "sketch": sk, "c": float(c), "n": 4096, "d": 8, "m": m, "trial": t,
                                 "E_inf": e, "E_2": e, "rho": 2.0, "argmax": 0})
    return pd.DataFrame(rows)


def test_aggregate_targets_failure_rates_and_slope():
    cfg = config.compose(PAPER, "mini", ["calibration.bootstrap=50"], phase="aggregate")
    df = _fake_trials(np.random.default_rng(12))
    v = aggregate.summarise(cfg, df)
    ref = df[(df.instance == "benign") & (df.sketch == "gaussian") & (df.c == 4.0)].E_inf
    assert v["eps_target"]["c4"] == pytest.approx(1.5 * np.quantile(ref, 0.95))
    hard = v["hard"]["countsketch"]["c4"]
    assert hard["fail_rate"] == pytest.approx(0.25) and hard["failures"] == 50
    assert hard["fail_ci_lo"] < 0.25 < hard["fail_ci_hi"]
    assert v["benign"]["gaussian"]["c4"]["fail_rate"] <= 0.05
    s = v["slopes"]["benign"]["gaussian"]
    assert s["slope"] == pytest.approx(-0.5, abs=0.05) and s["ci_lo"] <= s["slope"] <= s["ci_hi"]
    assert v["dims"]["hard"] == {"n": 4096, "d": 8}


def test_aggregate_needs_the_reference_cell():
    cfg = config.compose(PAPER, "mini", ["calibration.reference_sketch=srht"], phase="aggregate")
    with pytest.raises(ConfigError, match="calibration needs the trials of sketch srht"):
        aggregate.summarise(cfg, _fake_trials(np.random.default_rng(0)))


def test_cell_names_are_identifiers():
    assert cell(4) == "c4" and cell(0.5) == "c0p5" and cell(16.0) == "c16"


def test_claims_parse_and_name_the_metrics_the_steps_write():
    c = claimslib.load(ROOT / "params" / PAPER / "claims.yaml")
    files = {p.split(".")[0] for cl in c["claims"] for p in claimslib.paths(cl["check"])}
    assert files <= set(config.compose(PAPER, "mini").report.metrics)


# ---------------------------------------------------------------- bad input, one line


def _step(module: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"steps.linf_regression.{module}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=patient(60))


def test_missing_or_corrupt_instance_and_unknown_key_fail_with_one_line(tmp_path):
    res = _step("sketch_solve", "scale=smoke", f"io.instance={tmp_path}/none.npz", f"io.out={tmp_path}/t.parquet")
    assert res.returncode == 3 and res.stderr.strip().splitlines()[-1].startswith("error: missing instance")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    res = _step("sketch_solve", "scale=smoke", f"io.instance={bad}", f"io.out={tmp_path}/t.parquet")
    assert res.returncode == 3 and "is corrupt" in res.stderr.strip().splitlines()[-1]
    res = _step("sketch_solve", "scale=smoke", "grid.trails=3", f"io.instance={bad}", f"io.out={tmp_path}/t.parquet")
    assert res.returncode == 2 and "unknown key 'grid.trails'" in res.stderr
    res = _step("sketch_solve", "scale=smoke", "grid.trials=many", f"io.instance={bad}", f"io.out={tmp_path}/t.parquet")
    assert res.returncode == 2 and "grid.trials expects int" in res.stderr


def test_undefined_instance_is_refused(tmp_path):
    res = _step("instances", "scale=smoke", "instances.use=[benign,nope]", f"io.out_dir={tmp_path}")
    assert res.returncode == 2 and "undefined instance(s) nope" in res.stderr


# ---------------------------------------------------------------- full-scale fetch (local fixture)


def _tgz(path, member: str, text: str) -> str:
    data = text.encode()
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_extracts_and_loads_a_table(tmp_path):
    rows = "\n".join(",".join(str(float(i * 9 + j)) for j in range(9)) for i in range(20))
    digest = _tgz(tmp_path / "src.tgz", "CaliforniaHousing/cal_housing.data", rows)
    spec = {"url": (tmp_path / "src.tgz").as_uri(), "file": "cal_housing.tgz", "sha256": digest, "size": None,
            "archive": "tgz", "member": "CaliforniaHousing/cal_housing.data"}
    lock = fetch.fetch_asset("california", spec, tmp_path / "cache", tmp_path / "raw" / "california")
    assert lock["sha256"] == digest and lock["pinned"]
    X, y = fetch.load_table({"asset": "california", "member": spec["member"], "target_col": -1}, tmp_path / "raw")
    assert X.shape == (20, 8) and np.allclose(y, np.arange(20) * 9 + 8)
    A, b = problems.make({"kind": "csv", "n_max": 10}, np.random.default_rng(0), (X, y))
    assert A.shape == (10, 8) and abs(b.mean()) < 1e-12


def test_fetch_refuses_a_checksum_mismatch(tmp_path):
    _tgz(tmp_path / "src.tgz", "t.csv", "1,2\n3,4\n")
    spec = {"url": (tmp_path / "src.tgz").as_uri(), "file": "t.tgz", "sha256": "0" * 64, "archive": "tgz", "member": "t.csv"}
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch.fetch_asset("t", spec, tmp_path / "cache", tmp_path / "raw" / "t")
    assert not (tmp_path / "raw" / "t").exists()


# ---------------------------------------------------------------- the workflow


def test_full_scale_dry_run_plans_fetch_shards_and_cpu_rules_only():
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "linf_regression", "--config", "scale=full", timeout=120)
    out = res.stdout + res.stderr
    for rule in ("linf_regression_fetch", "linf_regression_instances", "linf_regression_sketch_solve",
                 "linf_regression_aggregate", "linf_regression_timing", "linf_regression_sanity", "report"):
        assert rule in out, out[-2000:]
    full = config.compose(PAPER, "full")
    assert all("gpu" not in sec for sec in full.resources.values())
    assert int(full.grid.shards) > 1


@pytest.fixture(scope="module")
def lr_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "linf_regression")


def test_smoke_dag_end_to_end(lr_smoke):
    res = lr_smoke / "results" / PAPER
    for name in ("linf", "timing", "sanity"):
        rec = json.loads((res / f"{name}.json").read_text())
        assert rec["scale"] == "smoke" and rec["paper"] == PAPER
    linf = json.loads((res / "linf.json").read_text())["values"]
    assert {"gaussian", "srht", "countsketch", "osnap_s2", "uniform", "leverage"} <= set(linf["hard"])
    assert set(linf["hard"]["srht"]) == {"c2", "c8"}
    report = (res / "report.md").read_text()
    assert "Smoke scale: these numbers mean nothing" in report and "not testable at smoke" in report
    for fig in ("eps_vs_m", "fail_rate", "concentration", "timing"):
        assert (res / "figures" / f"{fig}.png").stat().st_size > 1000
        assert f"figures/{fig}.png" in report
    for rule in ("instances", "sketch_solve_hard_0", "aggregate", "timing", "sanity"):
        assert "done: work" in (lr_smoke / "logs" / PAPER / f"{rule}.log").read_text()
        assert (lr_smoke / "benchmarks" / PAPER / f"{rule}.tsv").exists()
    assert "Nothing to be done" in snakemake(lr_smoke, "-n", "linf_regression", "--config", "scale=smoke").stdout


def test_more_trials_rerun_only_the_trials_and_what_reads_them(lr_smoke):
    out = snakemake(lr_smoke, "-n", "linf_regression", "--config", "scale=smoke", "linf_regression=grid.trials=30").stdout
    planned = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule "))}
    assert planned == {"linf_regression_sketch_solve", "linf_regression_aggregate", "report", "linf_regression"}, out[-2000:]


@pytest.mark.slow
def test_two_smoke_runs_give_identical_metrics(lr_smoke, tmp_path):
    other = copy_repo(tmp_path / "again")
    snakemake(other, "-c2", "results/linf_regression/linf.json", "results/linf_regression/sanity.json",
              "--config", "scale=smoke", timeout=240)
    for name in ("linf", "sanity"):
        a = json.loads((lr_smoke / "results" / PAPER / f"{name}.json").read_text())
        b = json.loads((other / "results" / PAPER / f"{name}.json").read_text())
        assert a["values"] == b["values"] and a["config_hash"] == b["config_hash"]
