"""GPU accounting for the report: estimated GPU-hours (params) beside measured (benchmarks ×
GPUs) and billed (sacct, found through Snakemake's run logs). No cluster needed."""

from __future__ import annotations

import subprocess

import pytest

from steps.core import accounting

TABLE = {"default": {"mem_mb": 1000, "runtime": 10},
         "teacher": {"gpu": 1, "runtime": 30},
         "distill": {"gpu": 2, "runtime": 60, "gpu_hours": 5.0},
         "pairs": {"gpu": 1, "runtime": 180},
         "digits": {"threads": 2}}


def write_bench(d, name, seconds):
    p = d / f"{name}.tsv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("s\th:m:s\tmax_rss\n" + "".join(f"{s}\t0:00:01\t100\n" for s in seconds))


@pytest.mark.parametrize("name, phase", [("teacher_s0", "teacher"), ("pairs_sd/shard0001", "pairs"),
                                         ("distill_rf2_s1", "distill"), ("digits", "digits"), ("report", None),
                                         ("teachers", None)])
def test_phase_of_benchmark_names(name, phase):
    assert accounting.phase_of(name, TABLE) == phase


def test_submitted_jobs_take_the_newest_log_per_rule_and_wildcards(tmp_path):
    logs = tmp_path / "log"
    logs.mkdir()
    sub = "Job {} has been submitted with SLURM jobid {} (log: /w/.snakemake/slurm_logs/rule_{}/{}.log)."
    (logs / "2026-01-01T000000.000000.snakemake.log").write_text("\n".join([
        sub.format(1, 7, "instaflow_teacher/0", 7),
        sub.format(2, 8, "instaflow_reflow/0", 8),
        "Job 3 has been submitted with SLURM jobid 9 (log: /w/.snakemake/slurm_logs/rule_report/instaflow/9.log).",
    ]))
    (logs / "2026-01-02T000000.000000.snakemake.log").write_text("\n".join([
        sub.format(1, 20, "instaflow_teacher/0", 20),  # a later run resubmitted the teacher...
        sub.format(1, 21, "instaflow_teacher/0", 21),  # ...and retried it once
        sub.format(4, 22, "instaflow_distill/rf2_0", 22),
        sub.format(5, 23, "otherpaper_teacher/0", 23),
    ]))
    got = accounting.submitted_jobs(logs, "instaflow")
    assert got == {"teacher": ["20", "21"], "reflow": ["8"], "distill": ["22"]}
    assert accounting.submitted_jobs(tmp_path / "missing", "instaflow") == {}


def test_parse_sacct_counts_every_run_and_its_gpus():
    out = "20|30|billing=1,cpu=1,gres/gpu=1,node=1\n20|50|billing=1,cpu=1,gres/gpu=1,node=1\n21|10|cpu=1,gres/gpu:a100=2\n22|5|cpu=1\n"
    assert accounting.parse_sacct(out) == {"20": [(30, 1), (50, 1)], "21": [(10, 2)], "22": [(5, None)]}


def test_rows_estimate_measure_and_bill(tmp_path):
    bench = tmp_path / "bench"
    write_bench(bench, "teacher_s0", [3600.0])
    write_bench(bench, "teacher_s1", [100.0, 1800.0])  # the last run counts
    write_bench(bench, "distill_rf2_s0", [360.0])
    write_bench(bench, "digits", [5.0])
    slurm = {"teacher": ["20", "21"], "digits": ["30"]}
    sacct = {"20": [(3600, 1), (60, 1)], "21": [(1800, None)]}
    rows = {r.phase: r for r in accounting.rows(TABLE, accounting.benchmark_seconds(bench), slurm, sacct)}
    assert set(rows) == {"teacher", "distill", "pairs"}  # GPU phases only
    t = rows["teacher"]
    assert (t.gpus, t.jobs, t.estimate_source) == (1, 2, "limit")
    assert t.estimated_h == pytest.approx(1.0)           # 1 GPU × 30 min × 2 jobs
    assert t.measured_h == pytest.approx(1.5)            # (3600 + 1800) s × 1 GPU
    assert t.billed_h == pytest.approx((3600 + 60 + 1800) / 3600)  # untracked GPUs: params' count
    assert t.slurm_jobs == 2
    d = rows["distill"]
    assert (d.estimated_h, d.estimate_source, d.measured_h, d.billed_h) == (5.0, "params", pytest.approx(0.2), None)
    p = rows["pairs"]
    assert (p.jobs, p.estimated_h, p.measured_h) == (0, None, None)
    assert accounting.rows(TABLE, {}, slurm, None)[2].billed_h is None  # no sacct: not billed


def test_section_only_after_a_run_through_slurm():
    local = [accounting.Row("teacher", 1, 1, 0.5, "limit", 0.01, None, 0)]
    assert accounting.section(local) == []
    lines = accounting.section([accounting.Row("teacher", 1, 1, 0.5, "limit", 0.01, 0.02, 1),
                                accounting.Row("distill", 2, 2, 5.0, "params", None, None, 0)])
    text = "\n".join(lines)
    assert "## GPU accounting" in text
    assert "| teacher | 1 | 1 | ≤ 0.5 | 0.01 | 0.02 (1) |" in text
    assert "| distill | 2 | 2 | 5 | — | — (0) |" in text


def test_sacct_runs_handles_missing_or_failing_sacct():
    def missing(*a, **k):
        raise FileNotFoundError("sacct")

    def failing(cmd, **k):
        return subprocess.CompletedProcess(cmd, 1, "", "Slurm accounting storage is disabled")

    def ok(cmd, **k):
        assert cmd[:2] == ["sacct", "-n"] and "-D" in cmd and cmd[cmd.index("-j") + 1] == "5,6"
        return subprocess.CompletedProcess(cmd, 0, "5|10|gres/gpu=1\n", "")

    assert accounting.sacct_runs(["5"], missing) is None
    assert accounting.sacct_runs(["5"], failing) is None
    assert accounting.sacct_runs([], failing) == {}
    assert accounting.sacct_runs(["5", "6"], ok) == {"5": [(10, 1)]}
