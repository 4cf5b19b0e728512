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
    assert eq["max_abs_diff"] < 1e-4 and set(eq["runs"]) == {"dhspg_s50", "random_s50"}
    acc = json.loads((res / "accuracy.json").read_text())["values"]
    assert acc["random"]["s50"]["params"] < acc["dhspg"]["s50"]["params"] or acc["dhspg"]["s50"]["group_sparsity"] > 0
    report = (res / "report.md").read_text()
    assert "not testable at smoke" in report and "frontier.png" in report
    assert (res / "figures" / "frontier.png").stat().st_size > 1000
    for job in ("zig_partition", "train_dhspg_s50", "train_random_s50", "construct_subnet", "evaluate", "report"):
        assert (otov2_smoke / "benchmarks" / "otov2" / f"{job}.tsv").exists()
        assert "done: work" in (otov2_smoke / "logs" / "otov2" / f"{job}.log").read_text()
    assert not list((otov2_smoke / "models" / "otov2").glob("*.resume.pt"))


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "otov2", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    for rule in ("otov2_zig_partition", "otov2_train", "otov2_construct_subnet", "otov2_evaluate", "report"):
        assert rule in out, out[-2000:]
