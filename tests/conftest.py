"""Shared fixtures: small configs and throw-away copies of the repository (STYLE R14).

End-to-end tests run Snakemake in a temporary copy of the checkout (the tracked and
not-ignored files, as a fresh clone would have them), never in the working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SNAKEMAKE = str(Path(PY).with_name("snakemake"))
DEVICE_ENV = "PAPERZOO_TEST_DEVICE"


def pytest_addoption(parser):
    parser.addoption("--device", choices=("cpu", "cuda"), default=os.environ.get(DEVICE_ENV, "cpu"),
                     help="where tests marked `device` run their steps (default cpu, or $PAPERZOO_TEST_DEVICE); "
                          "cuda: the GPU check, e.g. pytest tests/test_instaflow_full.py -m device --device cuda")


def pytest_configure(config):
    device = config.getoption("--device")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError("--device cuda: no CUDA GPU is visible to torch")
    os.environ[DEVICE_ENV] = device  # read by device_arg() when the test modules are imported


def device_arg() -> str:
    """The `device=` override of the tests marked `device`: cpu unless pytest --device says cuda."""
    return f"device={os.environ.get(DEVICE_ENV, 'cpu')}"


def pytest_collection_modifyitems(config, items):
    """The SLURM tests first: they mostly wait on the cluster (jobs queued, a time limit to
    pass), so started first, on a worker of their own (scripts/test.sh: one worker more than
    cores), they overlap with everything else instead of running on at the end."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slurm") else 1)


def repo_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    return [f for f in out if f and ((ROOT / f).is_file() or (ROOT / f).is_symlink())]


def copy_repo(dest: Path) -> Path:
    """A clean copy of the checkout at `dest`, with its own git history of one commit."""
    for f in repo_files():
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / f).is_symlink():  # e.g. ./slurm -> workflow/profiles/slurm, as git keeps it
            target.symlink_to(os.readlink(ROOT / f))
        else:
            shutil.copy2(ROOT / f, target)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "commit", "-qm", "copy"], cwd=dest, check=True, env=env)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 300, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` (SIGINT on timeout: SIGTERM does not stop a hung run)."""
    cmd = ["timeout", "-s", "INT", "-k", "10", str(timeout), SNAKEMAKE, *args]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                         env={**(os.environ if env is None else env), "PAPERZOO_ROOT": str(workdir)})
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def smoke_copy(tmp_path_factory, paper: str, timeout: int = 240) -> Path:
    """A fresh copy of the repository in which `paper`'s smoke DAG has run through Snakemake
    (for a module-scoped fixture of that paper's end-to-end tests)."""
    work = copy_repo(tmp_path_factory.mktemp(f"{paper}_smoke"))
    snakemake(work, "-c2", paper, "--config", "scale=smoke", timeout=timeout)
    return work


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The InstaFlow smoke DAG run once through Snakemake in a fresh copy of the repo."""
    work = copy_repo(tmp_path_factory.mktemp("smoke"))
    snakemake(work, "-c2", "instaflow", "results/index.md", "--config", "scale=smoke", "papers=instaflow")
    return work


@pytest.fixture()
def step_env(tmp_path):
    """Environment for running a step module as a subprocess from the repository root."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def cifar10_release(dest: Path, n: int = 20, seed: int = 0) -> Path:
    """A tar.gz shaped like cifar-10-python.tar.gz (the layout steps.data.cifar10 reads): five
    training batches and a test batch of `n` random 32×32 RGB images each, and batches.meta."""
    import io
    import pickle
    import tarfile

    import numpy as np

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            obj = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
            blob = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    path = Path(dest) / "cifar-10-python.tar.gz"
    path.write_bytes(buf.getvalue())
    return path


class Killed(Exception):
    """Stands for a SIGKILL right after a periodic resume checkpoint (full-scale resume tests)."""


def die_after(write):
    """A TrainLoop.checkpoint that writes the resume checkpoint, then dies (raises Killed):
    monkeypatch it over checkpoint.TrainLoop.checkpoint to stop a step at its first checkpoint."""

    def checkpoint_then_die(self, step):
        write(self, step)
        raise Killed

    return checkpoint_then_die
