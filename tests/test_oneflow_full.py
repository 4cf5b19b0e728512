"""OneFlow at full scale, without GPUs or network: the fetch step against a local file:// fixture
(checksums enforced, digests locked), the benchmark harness with a stand-in command, (the full DAG's dry run is in
test_oneflow_workflow.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from steps.core.errors import ArtifactError, ConfigError, PaperzooError
from steps.oneflow import bench, fetch
from tests.conftest import ROOT, patient


def test_fetch_downloads_verifies_and_locks(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"oneflow" * 100)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    spec = {"files": [{"url": src.as_uri(), "sha256": digest, "size": 700}], "expect": ["src.bin"]}
    lock = fetch.fetch_dataset(spec, tmp_path / "out", tmp_path / "cache")
    assert (tmp_path / "out" / "src.bin").read_bytes() == src.read_bytes()
    assert lock["source"]["urls"]["src.bin"]["sha256"] == digest and lock["files"]["src.bin"]["size"] == 700
    bad = {"files": [{"url": src.as_uri(), "sha256": "0" * 64, "size": None}]}
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch.fetch_dataset(bad, tmp_path / "out2", tmp_path / "cache2")
    with pytest.raises(ConfigError, match="needs files"):
        fetch.fetch_dataset({"files": []}, tmp_path / "out3", tmp_path / "cache3")


def test_fetch_links_a_local_copy(tmp_path):
    (tmp_path / "have").mkdir()
    (tmp_path / "have" / "x").write_text("1")
    lock = fetch.fetch_dataset({"local_dir": str(tmp_path / "have")}, tmp_path / "out", tmp_path / "cache")
    assert (tmp_path / "out" / "x").read_text() == "1" and "local_dir" in lock["source"]


def test_throughput_parsing():
    lines = ["step 1 throughput: 10", "noise", *[f"throughput: {v}" for v in (100, 110, 120)]]
    assert bench.throughput(lines, r"throughput[:=]\s*([0-9.]+)", 1) == (110.0, 3)
    with pytest.raises(PaperzooError, match="warm-up"):
        bench.throughput(lines[:2], r"throughput[:=]\s*([0-9.]+)", 1)


def test_bench_step_runs_a_stand_in_command(tmp_path, step_env):
    fake = f"{sys.executable} -c \"[print('throughput:', 100 + i) for i in range(8)]\""
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "steps.oneflow.bench", "scale=full", "io.bench=resnet50_oneflow_dp_4",
                          f"io.data={tmp_path}", f"io.metrics={out}", f"full.frameworks.oneflow.command={fake!r}"],
                         cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=patient(60))
    assert res.returncode == 0, res.stderr[-2000:]
    values = json.loads(out.read_text())["values"]
    assert values["throughput"] == pytest.approx(106.0) and values["gpus"] == 32


def test_unknown_benchmark_is_one_line(tmp_path, step_env):
    res = subprocess.run([sys.executable, "-m", "steps.oneflow.bench", "scale=full", "io.bench=nope", f"io.data={tmp_path}",
                          f"io.metrics={tmp_path}/x.json"], cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=patient(60))
    assert res.returncode == 2 and "error: unknown benchmark 'nope'" in res.stderr

