"""fast_sparse_convnets through Snakemake: the smoke DAG end to end in a fresh copy of the
repository, and dry runs of the DAG at mini and full scale."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake

PAPER = "fast_sparse_convnets"


@pytest.fixture(scope="module")
def fsc_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, PAPER)


def test_smoke_dag_end_to_end(fsc_smoke):
    res = fsc_smoke / "results" / PAPER
    for name in ("kernel_speedup", "frontier"):
        rec = metrics.read(res / f"{name}.json")  # validates against the schema
        assert rec["scale"] == "smoke" and rec["paper"] == PAPER
    fr = json.loads((res / "frontier.json").read_text())["values"]
    assert set(fr["models"]) == {"dense_w0_5", "dense_w1", "sparse_w1_s0_8_b1"}
    sparse = fr["models"]["sparse_w1_s0_8_b1"]
    assert set(sparse["latency_ms_by_kernel"]) == {"csr", "dense_loop", "blas"}
    assert sparse["params_nonzero"] < sparse["params_total"] and sparse["mflops_sparse"] < sparse["mflops_dense"]
    assert fr["matched"]["n_points"] == 1 and fr["sanity"]["max_engine_err"] < 1e-3
    ks = json.loads((res / "kernel_speedup.json").read_text())["values"]
    assert set(ks["shapes"]["c64x64_hw196"]) == {"s0_7", "s0_9"}
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    assert "| MobileNetV1 1.0, 90 % sparse" in report
    for fig in ("frontier.png", "accuracy_sparsity.png", "kernel_speedup.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for job in ("train_dense_w0.5", "train_dense_w1", "prune_w1_s0.8_b1", "bench_kernels", "frontier", "report"):
        assert (fsc_smoke / "benchmarks" / PAPER / f"{job}.tsv").exists()
        assert "done: work" in (fsc_smoke / "logs" / PAPER / f"{job}.log").read_text()
    assert not list((fsc_smoke / "models" / PAPER).glob("*.resume.pt"))


def test_a_parameter_change_reruns_only_what_reads_it(fsc_smoke):
    res = snakemake(fsc_smoke, "-n", "-c2", PAPER, "--config", "scale=smoke", f"{PAPER}=frontier.repeats=30")
    out = res.stdout + res.stderr
    planned = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule "))}
    assert planned == {f"{PAPER}_frontier", "report", PAPER}, out[-2000:]


@pytest.mark.parametrize("scale, n_dense, n_sparse", [("mini", 5, 6), ("full", 4, 12)])
def test_dry_run_plans_the_whole_dag(scale, n_dense, n_sparse):
    """One dry run per scale: the jobs planned, and at full the GPU requests of the training rules."""
    res = snakemake(ROOT, "-n", "-p", "--forceall", PAPER, "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    blocks = out.split("\nrule ")
    jobs = [b.split(":", 1)[0] for b in blocks[1:]]
    assert jobs.count(f"{PAPER}_train_dense") == n_dense, out[-2000:]
    assert jobs.count(f"{PAPER}_prune") == n_sparse, out[-2000:]
    assert f"{PAPER}_bench_kernels" in jobs and f"{PAPER}_frontier" in jobs
    if scale == "full":
        train = [b for b in blocks if b.startswith((f"{PAPER}_train_dense:", f"{PAPER}_prune:"))]
        assert all("gpu=1" in b for b in train), out[-2000:]
        bench = [b for b in blocks if b.startswith(f"{PAPER}_bench_kernels:")]
        assert "gpu=" not in bench[0]
