"""otov2 through Snakemake: the smoke DAG end to end in a fresh copy of the repository, and dry
runs of the DAG at mini and full scale."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake


@pytest.fixture(scope="module")
def otov2_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "otov2")


def test_smoke_dag_end_to_end(otov2_smoke):
    res = otov2_smoke / "results" / "otov2"
    for name in ("partition", "equivalence", "accuracy"):
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "otov2"
    eq = json.loads((res / "equivalence.json").read_text())["values"]
    assert eq["max_abs_diff"] < 1e-4 and set(eq["runs"]) == {"dhspg_s50", "random_s50", "random_matched_s50"}
    acc = json.loads((res / "accuracy.json").read_text())["values"]
    assert acc["random"]["s50"]["params"] < acc["dhspg"]["s50"]["params"] or acc["dhspg"]["s50"]["group_sparsity"] > 0
    # the matched baseline removed exactly as many groups as DHSPG did
    matched = acc["random_matched"]["s50"]
    assert matched["groups_removed"] == acc["dhspg"]["s50"]["groups_removed"]
    assert matched["target_sparsity"] == acc["dhspg"]["s50"]["group_sparsity"]
    report = (res / "report.md").read_text()
    assert "not testable at smoke" in report and "frontier.png" in report
    assert (res / "figures" / "frontier.png").stat().st_size > 1000
    for job in ("zig_partition", "train_dhspg_s50", "train_random_s50", "train_random_matched_s50", "construct_subnet",
                "evaluate", "report"):
        assert (otov2_smoke / "benchmarks" / "otov2" / f"{job}.tsv").exists()
        assert "done: work" in (otov2_smoke / "logs" / "otov2" / f"{job}.log").read_text()
    assert not list((otov2_smoke / "models" / "otov2").glob("*.resume.pt"))


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "otov2", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    for rule in ("otov2_zig_partition", "otov2_train", "otov2_construct_subnet", "otov2_evaluate", "report"):
        assert rule in out, out[-2000:]
    assert ("otov2_fetch" in out) == (scale == "full")


def test_full_dag_trains_both_tutorial_nets_on_gpus():
    """Full scale: ResNet50 at 0.8 and VGG16-BN at 0.79 (tutorials 03/04), four arms each (the
    baselines pruned to DHSPG's achieved group count), every training job with a GPU and the
    net/arm/sparsity on its command line."""
    res = snakemake(ROOT, "-n", "-p", "--forceall", "otov2", "--config", "scale=full", timeout=120)
    out = res.stdout + res.stderr
    for run in ("resnet50_dense_s0", "resnet50_dhspg_s80", "resnet50_lasso_matched_s80", "resnet50_random_matched_s80",
                "vgg16_bn_dense_s0", "vgg16_bn_dhspg_s79", "vgg16_bn_lasso_matched_s79", "vgg16_bn_random_matched_s79"):
        assert f"io.out=models/otov2/{run}.pt" in out, out[-2000:]
    assert "io.net=vgg16_bn io.arm=dhspg io.sparsity=0.79 io.raw=data/otov2/cifar10" in out
    assert ("io.net=vgg16_bn io.match=models/otov2/vgg16_bn_dhspg_s79.pt io.arm=lasso_matched io.sparsity=0.79" in out), out[-2000:]
    jobs = out.split("\n\n")
    train_jobs = [j for j in jobs if "rule otov2_train:" in j]
    assert len(train_jobs) == 8 and all("gpu=1" in j for j in train_jobs)
