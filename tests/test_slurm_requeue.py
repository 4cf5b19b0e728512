"""A step stopped by SIGTERM under SLURM: it writes its resume checkpoint, then requeues its
job when the SIGTERM was a warning (job still RUNNING: --signal before the time limit,
preemption) and leaves a cancelled or timed-out job to Snakemake's retry. No cluster needed:
squeue and scontrol are stand-ins on PATH (tests/test_slurm.py does it on a real one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from steps.core import slurm
from steps.core.io import save_npz
from tests.conftest import ROOT, patient


def fake_run(state, requeue_rc=0, calls=None):
    def run(cmd, **kw):
        if calls is not None:
            calls.append(cmd)
        if cmd[0] == "squeue":
            return subprocess.CompletedProcess(cmd, 0 if state else 1, f"{state}\n" if state else "", "")
        return subprocess.CompletedProcess(cmd, requeue_rc, "", "" if requeue_rc == 0 else "Job is not requeueable")
    return run


def test_job_id_only_under_slurm():
    assert slurm.job_id({}) is None
    assert slurm.job_id({"SLURM_JOB_ID": "42"}) == "42"
    assert slurm.job_id({"SLURM_JOB_ID": "x"}) is None


@pytest.mark.parametrize("state, requeued", [("RUNNING", True), ("COMPLETING", False), ("CANCELLED", False),
                                             ("TIMEOUT", False), (None, False)])
def test_requeue_only_while_running(state, requeued):
    calls, said = [], []
    got = slurm.requeue_after_sigterm({"SLURM_JOB_ID": "42"}, fake_run(state, calls=calls), said.append)
    assert got is requeued
    assert (["scontrol", "requeue", "42"] in calls) is requeued
    assert said and (" requeued:" in said[0]) is requeued


def test_no_slurm_no_calls_and_failed_requeue_is_reported():
    calls = []
    assert slurm.requeue_after_sigterm({}, fake_run("RUNNING", calls=calls), print) is False and calls == []
    said = []
    assert slurm.requeue_after_sigterm({"SLURM_JOB_ID": "7"}, fake_run("RUNNING", requeue_rc=1), said.append) is False
    assert "not requeueable" in said[0]


@pytest.fixture()
def fake_slurm_bin(tmp_path):
    """squeue reporting $FAKE_STATE, scontrol recording its arguments in $FAKE_CALLS."""
    b = tmp_path / "bin"
    b.mkdir()
    (b / "squeue").write_text('#!/bin/sh\necho "$FAKE_STATE"\n')
    (b / "scontrol").write_text('#!/bin/sh\necho "$@" >> "$FAKE_CALLS"\n')
    for f in b.iterdir():
        f.chmod(0o755)
    return b


@pytest.mark.parametrize("state, requeued", [("RUNNING", True), ("COMPLETING", False)])
def test_teacher_step_under_slurm_checkpoints_then_requeues(tmp_path, fake_slurm_bin, state, requeued):
    rng = np.random.default_rng(0)
    save_npz(tmp_path / "digits.npz", images=rng.uniform(-1, 1, (64, 64)).astype(np.float32),
             labels=rng.integers(0, 10, 64), caption_id=rng.integers(0, 4, 64))
    save_npz(tmp_path / "emb.npz", embedding=np.eye(4, dtype=np.float32), caption_id=np.arange(4))
    out, calls = tmp_path / "rf1.pt", tmp_path / "calls.txt"
    env = {**os.environ, "PATH": f"{fake_slurm_bin}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
           "FAKE_STATE": state, "FAKE_CALLS": str(calls), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "steps.instaflow.teacher", "scale=smoke", "seed=0", "threads=1", "teacher.steps=100000",
           "ckpt.every_steps=1000000000", "progress.every_s=0.2", f"io.digits={tmp_path}/digits.npz",
           f"io.captions={tmp_path}/emb.npz", f"io.out={out}"]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    line = ""
    while "teacher: " not in line and time.time() < deadline:  # a progress line: the loop runs
        line = p.stdout.readline()
    p.send_signal(signal.SIGTERM)
    log = line + p.communicate(timeout=patient(60))[0]
    assert p.returncode == 143, log
    assert (tmp_path / "rf1.pt.resume.pt").exists() and not out.exists()
    assert (calls.exists() and calls.read_text().split() == ["requeue", "4242"]) is requeued, log
    assert ("SLURM job 4242 requeued" in log) is requeued
