"""rsb_dense through Snakemake: the smoke DAG end to end in a fresh copy of the repository, and
dry runs of the DAG at mini and full scale."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake


@pytest.fixture(scope="module")
def rsb_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "rsb_dense")


def test_smoke_dag_end_to_end(rsb_smoke):
    res = rsb_smoke / "results" / "rsb_dense"
    for name in ("theory", "capacity", "noise", "supralinear"):
        rec = metrics.read(res / f"{name}.json")  # validates against the schema
        assert rec["scale"] == "smoke" and rec["paper"] == "rsb_dense"
    cap = json.loads((res / "capacity.json").read_text())["values"]
    assert set(cap) == {"p2", "p4", "p6"}
    assert {"m05", "spinodal", "curves"} <= set(cap["p4"]) and "metropolis" in cap["p4"]
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    assert "| α_c(P=4), RS T = 0, hard spin glass only" in report
    for fig in ("retrieval_curves.png", "extrapolation.png", "noise.png", "supralinear.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for job in ("theory", "montecarlo_p4_n12", "montecarlo_p2_n100", "extrapolate", "report"):
        assert (rsb_smoke / "benchmarks" / "rsb_dense" / f"{job}.tsv").exists()
        assert "done: work" in (rsb_smoke / "logs" / "rsb_dense" / f"{job}.log").read_text()
    assert not list((rsb_smoke / "data" / "rsb_dense").rglob("*.resume.pt"))


def test_a_parameter_change_reruns_only_what_reads_it(rsb_smoke):
    res = snakemake(rsb_smoke, "-n", "-c2", "rsb_dense", "--config", "scale=smoke", "rsb_dense=extrapolate.bootstrap=30")
    out = res.stdout + res.stderr
    planned = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule "))}
    assert planned == {"rsb_dense_extrapolate", "report", "rsb_dense"}, out[-2000:]


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "rsb_dense", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    for rule in ("rsb_dense_theory", "rsb_dense_montecarlo", "rsb_dense_extrapolate", "report"):
        assert rule in out, out[-2000:]
