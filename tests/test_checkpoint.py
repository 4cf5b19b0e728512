"""Checkpoints and resumption: SIGTERM writes a checkpoint and exits 143; after SIGKILL the
rerun resumes from the last periodic checkpoint; either way the result equals an
uninterrupted run's, bit for bit."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from steps.core import checkpoint
from steps.core.errors import ArtifactError
from steps.core.io import save_npz
from tests.conftest import ROOT, patient


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Digits and one-hot captions, as the digits and captions phases would write them."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    save_npz(d / "digits.npz", images=rng.uniform(-1, 1, (64, 64)).astype(np.float32),
             labels=rng.integers(0, 10, 64), caption_id=rng.integers(0, 4, 64))
    save_npz(d / "emb.npz", embedding=np.eye(4, dtype=np.float32), caption_id=np.arange(4))
    return d


def teacher(tmp, data, out, steps, every, extra=()):
    """The teacher step as a subprocess (its real CLI), smoke scale."""
    cmd = [sys.executable, "-m", "steps.instaflow.teacher", "scale=smoke", "seed=0", "threads=1",
           f"teacher.steps={steps}", f"ckpt.every_steps={every}", "progress.every_s=0.2",
           f"io.digits={data}/digits.npz", f"io.captions={data}/emb.npz", f"io.out={out}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def weights(path):
    return checkpoint.load(path)["state"]["model"]


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "rf1.pt"
    p = teacher(None, tiny_data, out, 3000, 500)
    assert p.wait(patient(120)) == 0, p.stdout.read()
    return weights(out)


def wait_for(path, timeout=60):
    t, timeout = time.time(), patient(timeout)
    while not path.exists():
        if time.time() - t > timeout:
            raise TimeoutError(path)
        time.sleep(0.05)


def wait_for_line(p, text: str, timeout: float = 60) -> str:
    """Read the process's output until a line contains `text`; returns what was read."""
    seen, end = "", time.time() + patient(timeout)
    while time.time() < end:
        line = p.stdout.readline()
        seen += line
        if text in line or not line:
            return seen
    raise TimeoutError(text)


def test_sigterm_checkpoints_exits_nonzero_and_resumes_equal(tiny_data, tmp_path, reference):
    out = tmp_path / "rf1.pt"
    resume = tmp_path / "rf1.pt.resume.pt"
    p = teacher(None, tiny_data, out, 3000, 10**9)  # no periodic checkpoints: only SIGTERM writes one
    head = wait_for_line(p, "teacher: ")  # training has started (a progress line), whatever the load
    p.send_signal(signal.SIGTERM)
    log = head + p.communicate(timeout=patient(60))[0]
    assert p.returncode == 143, log
    assert resume.exists() and not out.exists()
    assert "error: stopped by SIGTERM at step" in log
    stopped_at = checkpoint.load(resume)["step"]
    assert 0 < stopped_at < 3000
    p = teacher(None, tiny_data, out, 3000, 10**9)
    log = p.communicate(timeout=patient(120))[0]
    assert p.returncode == 0, log
    assert f"from step {stopped_at}" in log
    assert not resume.exists()
    assert same(weights(out), reference)


def test_sigkill_rerun_resumes_from_last_periodic_checkpoint(tiny_data, tmp_path, reference):
    out = tmp_path / "rf1.pt"
    resume = tmp_path / "rf1.pt.resume.pt"
    p = teacher(None, tiny_data, out, 3000, 500)
    wait_for(resume)
    time.sleep(0.3)
    p.kill()
    p.wait()
    assert resume.exists() and not out.exists()
    at = checkpoint.load(resume)["step"]
    assert at % 500 == 0 and at > 0
    p = teacher(None, tiny_data, out, 3000, 500)
    log = p.communicate(timeout=patient(120))[0]
    assert p.returncode == 0, log
    assert f"resuming {out} from step" in log
    assert same(weights(out), reference)


def test_corrupt_resume_checkpoint_is_reported_not_discarded(tiny_data, tmp_path):
    out = tmp_path / "rf1.pt"
    resume = tmp_path / "rf1.pt.resume.pt"
    resume.write_bytes(b"not a checkpoint")
    p = teacher(None, tiny_data, out, 50, 500)
    log = p.communicate(timeout=patient(60))[0]
    assert p.returncode == 3, log
    assert f"resume checkpoint {resume} is corrupt" in log
    assert resume.read_bytes() == b"not a checkpoint"


def test_checkpoint_carries_config_and_rng(tmp_path):
    from steps.core.config import compose

    cfg = compose("instaflow", "smoke", phase="teacher")
    m = torch.nn.Linear(2, 2)
    checkpoint.save(tmp_path / "c.pt", cfg, 7, model=m)
    payload = checkpoint.load(tmp_path / "c.pt")
    assert payload["step"] == 7 and payload["config"]["teacher"]["steps"] == 100
    assert {"python", "numpy", "torch"} <= set(payload["rng"])


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(ArtifactError, match="missing checkpoint"):
        checkpoint.load(tmp_path / "none.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ArtifactError, match="not a paperzoo checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")
