"""The InstaFlow DAG through Snakemake: smoke end to end in a fresh copy of the repository,
determinism, rerun semantics, lint, and dry runs at all three scales."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from tests.conftest import ROOT, copy_repo, snakemake

TARGETS = ["fid", "straightness", "prompt_acc", "sampling_time", "fid_features"]


def test_smoke_dag_end_to_end(smoke_run):
    res = smoke_run / "results" / "instaflow"
    for name in TARGETS:
        rec = metrics.read(res / f"{name}.json")  # validates against the schema
        assert rec["scale"] == "smoke" and rec["paper"] == "instaflow"
    fid = json.loads((res / "fid.json").read_text())["values"]
    assert {"rf1", "rf2", "rf1_distill_short", "rf1_distill_long", "instaflow_short", "instaflow_long"} <= set(fid["one_step"])
    assert set(fid["by_caption"]) == {"exact", "partial", "vague"}
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report
    assert "not testable at smoke" in report
    for fig in ("fid_vs_steps.png", "fid_by_caption.png", "samples.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    index = (smoke_run / "results" / "index.md").read_text()
    assert "| [instaflow](instaflow/report.md) | smoke |" in index
    for rule in ("teacher_s0", "reflow_s0", "distill_rf2_s0", "evaluate", "report"):
        assert (smoke_run / "benchmarks" / "instaflow" / f"{rule}.tsv").exists()
        assert "done: work" in (smoke_run / "logs" / "instaflow" / f"{rule}.log").read_text()
    assert not list((smoke_run / "models").rglob("*.resume.pt"))


def test_rerun_with_nothing_changed_runs_nothing(smoke_run):
    res = snakemake(smoke_run, "-n", "-c2", "instaflow", "results/index.md", "--config", "scale=smoke", "papers=instaflow")
    assert "Nothing to be done" in res.stdout + res.stderr


def test_changing_one_parameter_reruns_only_the_affected_rules(smoke_run):
    res = snakemake(smoke_run, "-n", "-c2", "instaflow", "--config", "scale=smoke", "instaflow=distill.lr=0.001")
    out = res.stdout + res.stderr
    planned = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("rule ")}
    assert planned == {"instaflow_distill", "instaflow_evaluate", "report", "instaflow"}, out[-2000:]
    assert "instaflow_teacher" not in out and "instaflow_reflow" not in out


def test_two_runs_of_one_config_give_identical_metrics(smoke_run, tmp_path):
    other = copy_repo(tmp_path / "again")
    snakemake(other, "-c2", "results/instaflow/fid.json", "results/instaflow/straightness.json", "--config", "scale=smoke")
    for name in ("fid", "straightness", "prompt_acc"):
        a = json.loads((smoke_run / "results" / "instaflow" / f"{name}.json").read_text())
        b = json.loads((other / "results" / "instaflow" / f"{name}.json").read_text())
        assert a["values"] == b["values"] and a["config_hash"] == b["config_hash"]


def test_lint_passes():
    res = snakemake(ROOT, "--lint", check=False)
    assert res.returncode == 0, res.stdout[-3000:]


@pytest.mark.parametrize("scale", ["smoke", "mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "results/instaflow/fid.json", "results/instaflow/report.md",
                    "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    assert "instaflow_evaluate" in out and "report" in out
    if scale == "full":
        assert "instaflow_fetch" in out and "instaflow_reflow" in out


def test_bad_override_fails_before_any_job(tmp_path):
    res = snakemake(ROOT, "-n", "instaflow", "--config", "instaflow=reflow.stepz=1", check=False)
    assert res.returncode != 0
    assert "error: unknown key 'reflow.stepz' for instaflow; valid keys at reflow:" in res.stdout + res.stderr


def test_unknown_scale_and_config_key_fail_with_one_line():
    res = snakemake(ROOT, "-n", "--config", "scale=huge", check=False)
    assert res.returncode != 0 and "error: unknown scale 'huge'; valid: smoke, mini, full" in res.stdout + res.stderr
    res = snakemake(ROOT, "-n", "--config", "instaflw=x", check=False)
    assert res.returncode != 0 and "error: unknown --config key(s) instaflw" in res.stdout + res.stderr


def test_benchmark_summary_of_the_smoke_run(smoke_run, tmp_path):
    from steps.core import benchmark

    s = benchmark.summarize(smoke_run, "instaflow", dag_wall_s=30.0)
    jobs = {r["job"] for r in s["jobs"]}
    assert {"teacher_s0", "evaluate", "report"} <= jobs
    assert all(r["work_s"] is not None and r["max_rss_mb"] for r in s["jobs"])
    assert 0.0 < s["outside_work_share"] < 1.0
    assert "Share of time outside the steps' own work" in benchmark.table(s)
