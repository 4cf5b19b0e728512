"""Reliability at the seams, through Snakemake on InstaFlow's smoke DAG (one fresh copy of the
repository, the tests in order): a bad value stops before any job and touches nothing; an
unknown target gets the list of papers; a step that fails shows its own error and, the command
rerun, everything below it is rebuilt; a training step killed with SIGKILL after a parameter
change resumes from its checkpoint when the same command is rerun, and everything downstream
is rebuilt; switching scale rebuilds, even at full scale where the rules differ."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import SNAKEMAKE, patient, smoke_copy, snakemake

SMOKE = ("--config", "scale=smoke")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return smoke_copy(tmp_path_factory, "instaflow")


def _mtimes(work: Path) -> dict[str, int]:
    return {str(p.relative_to(work)): p.stat().st_mtime_ns
            for d in ("data", "models", "results") for p in (work / d).rglob("*") if p.is_file()}


def test_a_bad_value_stops_before_any_job_and_touches_nothing(work):
    before = _mtimes(work)
    res = snakemake(work, "-c2", "instaflow", *SMOKE, "instaflow=teacher.steps=0", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "error: instaflow: teacher.steps = 0 is not valid: expected an integer ≥ 1" in out
    assert "rule instaflow_" not in out and _mtimes(work) == before


def test_an_unknown_target_gets_the_list_of_papers(work):
    res = snakemake(work, "-n", "instaflw", *SMOKE, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "MissingRuleException" not in out
    assert "error: unknown target 'instaflw' (did you mean instaflow?); papers: instaflow" in out


def test_a_failed_step_shows_its_error_and_the_rerun_rebuilds_what_it_left(work):
    fid = work / "results" / "instaflow" / "fid.json"
    first = fid.stat().st_mtime_ns
    # a value within its own range that the step refuses (not a multiple of the batch)
    res = snakemake(work, "-c2", "instaflow", *SMOKE, "instaflow=teacher.micro_batch=7", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "step error (logs/instaflow/teacher_s0.log): per-process batch 256" in out
    assert not (work / "models" / "instaflow" / "rf1_s0.pt").exists()
    assert not fid.exists()  # stale below the failed teacher: removed when the run started
    # the user drops the bad value and reruns: the teacher and everything below it are rebuilt
    snakemake(work, "-c2", "instaflow", *SMOKE)
    assert (work / "models" / "instaflow" / "rf1_s0.pt").exists() and fid.stat().st_mtime_ns > first
    assert "Nothing to be done" in snakemake(work, "-n", "instaflow", *SMOKE).stdout


def _kill_step(work: Path, module: str) -> None:
    """SIGKILL the step process `python -m <module>` running in `work` (and only there)."""
    for p in psutil.process_iter(["cmdline", "cwd"]):
        cmd = p.info["cmdline"] or []
        if module in cmd and p.info["cwd"] == str(work):
            p.send_signal(signal.SIGKILL)
            return
    raise AssertionError(f"no {module} process in {work}")


def test_a_killed_training_step_resumes_and_everything_below_is_rebuilt(work):
    args = ["-c2", "instaflow", *SMOKE, "instaflow=teacher.steps=400"]
    resume = work / "models" / "instaflow" / "rf1_s0.pt.resume.pt"
    env = {**os.environ, "PAPERZOO_ROOT": str(work)}
    run = subprocess.Popen([SNAKEMAKE, *args], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not resume.exists():  # smoke checkpoints every 50 steps
            assert run.poll() is None and time.monotonic() < deadline, "the teacher wrote no checkpoint"
            time.sleep(0.1)
        _kill_step(work, "steps.instaflow.teacher")
        out, _ = run.communicate(timeout=patient(120))
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0 and "Error in rule instaflow_teacher" in out, out[-3000:]
    assert not (work / "results" / "instaflow" / "report.md").exists()  # stale: removed at start
    # the same command again: the teacher resumes, the rest of the DAG is rebuilt
    snakemake(work, *args)
    log = (work / "logs" / "instaflow" / "teacher_s0.log").read_text()
    assert "resuming models/instaflow/rf1_s0.pt from step" in log
    assert not resume.exists() and (work / "results" / "instaflow" / "report.md").exists()
    import torch

    ckpt = torch.load(work / "models" / "instaflow" / "rf1_s0.pt", weights_only=False)
    assert ckpt["config"]["teacher"]["steps"] == 400
    assert "Nothing to be done" in snakemake(work, "-n", *args).stdout


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_switching_scale_rebuilds(work, scale):
    """A checkout holding smoke outputs: another scale plans the paper's jobs again, at full
    scale too (other rules, same output paths), through the scale stamp every rule reads."""
    res = snakemake(work, "-n", "results/instaflow/fid.json", "--config", f"scale={scale}")
    out = res.stdout + res.stderr
    assert "Nothing to be done" not in out
    assert "rule scale_stamp" in out and "rule instaflow_evaluate" in out
