"""The OneFlow DAG through Snakemake: the smoke run end to end in a fresh copy of the repository,
determinism of everything that is not a timing, and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steps.core import metrics
from tests.conftest import ROOT, copy_repo, smoke_copy, snakemake

SMOKE = ["unit", "equiv_dp", "equiv_tp", "bytes_grid", "pipeline"]  # throughput: mini only (smoke.yaml)
# wall-clock dependent: pipeline.py's idle and peaks, throughput.py's samples/s and ratios
TIMING = ("idle", "timing", "peak_inflight", "peak_minus_quota_max", "arms", "ratio")


@pytest.fixture(scope="module")
def oneflow_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "oneflow")


def test_smoke_dag_end_to_end(oneflow_smoke):
    res = oneflow_smoke / "results" / "oneflow"
    for name in SMOKE:
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "oneflow"
    report = (res / "report.md").read_text()
    assert "| **holds** |" in report or "**holds**" in report
    for fig in ("bytes_by_placement", "pipeline_timeline"):
        assert (res / "figures" / f"{fig}.png").exists(), fig
    for rule in SMOKE:
        assert (oneflow_smoke / "benchmarks" / "oneflow" / f"{rule}.tsv").exists()
        assert "done: work" in (oneflow_smoke / "logs" / "oneflow" / f"{rule}.log").read_text()


def _strip(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in TIMING}


@pytest.mark.slow
def test_two_runs_give_identical_metrics(oneflow_smoke, tmp_path):
    other = copy_repo(tmp_path / "again")
    snakemake(other, "-c2", "oneflow", "--config", "scale=smoke", timeout=240)
    for name in SMOKE:
        a = json.loads((oneflow_smoke / "results" / "oneflow" / f"{name}.json").read_text())
        b = json.loads((other / "results" / "oneflow" / f"{name}.json").read_text())
        assert _strip(a["values"]) == _strip(b["values"]) and a["config_hash"] == b["config_hash"], name


def test_bad_input_is_one_line(tmp_path, step_env):
    res = snakemake(ROOT, "-n", "oneflow", "--config", "oneflow=group.world=two", check=False)
    assert res.returncode != 0 and "error: group.world expects int" in res.stdout + res.stderr
    res = snakemake(ROOT, "-n", "oneflow", "--config", "oneflow=group.wrld=2", check=False)
    assert res.returncode != 0 and "error: unknown key 'group.wrld' for oneflow" in res.stdout + res.stderr
    res = subprocess.run([sys.executable, "-m", "steps.oneflow.equiv", "scale=smoke", "equiv.placement=zz",
                          f"io.metrics={tmp_path}/x.json"], cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=60)
    # refused when the config is composed (params/oneflow/checks.yaml), before the step runs
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith(
        'error: oneflow: equiv.placement = "zz" is not valid: expected one of dp, tp, hybrid, pp')


@pytest.mark.parametrize("scale", ["smoke", "mini", "full"])
def test_dry_run(scale):
    res = snakemake(ROOT, "-n", "oneflow", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    assert "report" in out
    assert ("oneflow_fetch" in out and "oneflow_bench" in out) if scale == "full" else "oneflow_equiv" in out
    assert ("oneflow_throughput" in out) == (scale == "mini")
