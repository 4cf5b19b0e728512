"""GPUSQ-ViT through Snakemake: the smoke DAG end to end in a fresh copy of the repository, a
bad arm gives one error line, and the mini and full DAGs plan every rule."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake


@pytest.fixture(scope="module")
def gq_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "gpusq_vit", timeout=480)


def test_smoke_dag_end_to_end(gq_smoke):
    res = gq_smoke / "results" / "gpusq_vit"
    for name in ("accuracy", "compression", "gpu_speedup"):
        rec = metrics.read(res / f"{name}.json")  # validates against the schema
        assert rec["scale"] == "smoke" and rec["paper"] == "gpusq_vit"
    acc = json.loads((res / "accuracy.json").read_text())["values"]["top1"]
    assert set(acc) == {"dense", "sp24_kd", "gpusq_int8", "ptq_int8", "ptq_int4", "dense_ptq_int8"}
    comp = json.loads((res / "compression.json").read_text())["values"]
    assert comp["nm_valid"]["sp24_kd"] == 1 and comp["nm_valid"]["gpusq_int8"] == 1
    assert comp["dense"]["size_ratio"] == 1 and comp["gpusq_int8"]["size_ratio"] > 2
    assert comp["gpusq_int8"]["packed_size_ratio"] > 2 and comp["pack_roundtrip_max_abs"] == 0
    assert comp["gpusq_int8"]["graph"]["attention_flops"] > 0 and comp["gpusq_int8"]["graph_bops_ratio"] > 1
    accounting = metrics.read(res / "compression.json")["accounting"]
    assert metrics.declares(accounting, "gpusq_int8.size_ratio") and not metrics.declares(accounting, "gpusq_int8.packed_size_ratio")
    assert not metrics.declares(accounting, "gpusq_int8.graph.bops") and metrics.declares(accounting, "gpusq_int8.bops")
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    assert "not measured (no CUDA GPU)" in report or "measured on" in report
    for fig in ("frontier.png", "accuracy_drop.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for job in ("data", "dense", "prune_sp24_kd", "qat_gpusq_int8", "ptq", "evaluate", "bench", "report"):
        assert (gq_smoke / "benchmarks" / "gpusq_vit" / f"{job}.tsv").exists()
        assert "done: work" in (gq_smoke / "logs" / "gpusq_vit" / f"{job}.log").read_text()
    assert not list((gq_smoke / "models" / "gpusq_vit").glob("*.resume.pt"))


def test_unknown_arm_is_one_error_line(gq_smoke):
    res = subprocess.run([sys.executable, "-m", "steps.gpusq_vit.prune", "scale=smoke", "io.arm=sp33",
                          "io.data=data/gpusq_vit/fmnist.npz", "io.teacher=models/gpusq_vit/dense.pt", "io.out=/tmp/never.pt"],
                         cwd=gq_smoke, capture_output=True, text=True, env={"PAPERZOO_ROOT": str(gq_smoke), "PATH": ""})
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error: unknown prune arm 'sp33'")


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "gpusq_vit", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    for rule in ("gpusq_vit_data", "gpusq_vit_dense", "gpusq_vit_prune", "gpusq_vit_qat", "gpusq_vit_ptq", "gpusq_vit_evaluate",
                 "gpusq_vit_bench", "report"):
        assert rule in out, out[-2000:]
