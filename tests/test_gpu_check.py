"""The GPU check (steps.core.gpu_check) tested where there is no GPU: its --device cpu --tiny
mode runs every part on tiny models (tests collected, not run), the record and its arithmetic
are checked, and without CUDA the real mode stops at once with one clear line. The SD 1.5 sizes
are checked by counting parameters on the meta device (no memory, no download)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from steps.core import gpu_check
from steps.core.config import compose
from steps.instaflow.sd import arch, bench
from tests.conftest import ROOT, patient


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """scripts/gpu_check.sh --device cpu --tiny, once: (completed process, JSON record)."""
    out = tmp_path_factory.mktemp("gpu_check") / "record.json"
    res = subprocess.run(["bash", "scripts/gpu_check.sh", "--device", "cpu", "--tiny", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=patient(600))
    return res, json.loads(out.read_text()) if out.exists() else None


def test_tiny_mode_runs_every_part(tiny_run):
    res, rec = tiny_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert rec["ok"] and rec["failures"] == [] and rec["mode"] == {"quick": False, "tiny": True}
    env = rec["environment"]
    assert env["device"] == "cpu" and env["gpu"] is None and env["torch"] == torch.__version__ and env["date"]
    assert "TINY MODELS" in res.stdout and "all checks passed" in res.stdout
    t = rec["tests"]
    assert t["ok"] and t["collect_only"] and "--device cpu" in t["command"] and "collected" in t["summary"]
    phases = [r["phase"] for r in rec["precision"]]
    assert phases == ["core.distributed.backward", "instaflow.fid_features", "instaflow.teacher", "instaflow.reflow",
                      "instaflow.distill", "instaflow.sd.reflow (tiny UNet)"]
    assert all(r["resolved"] == "bf16" and r["ok"] for r in rec["precision"])  # CPU: bf16 itself is tested
    assert rec["precision"][0]["linear_dtypes"] == ["bfloat16"] and rec["precision"][0]["grad_dtype"] == "float32"
    m = rec["measurements"]
    assert set(m) == {"pairs_sd", "pairs_rf2", "reflow_rf_m2", "distill_l2_m2", "distill_lpips_m2"}
    assert all(v["finite"] and v["per_s"] > 0 and len(v["seconds_per_step"]) == 1 for v in m.values())
    assert m["reflow_rf_m2"]["batch"] == 4 and m["distill_lpips_m2"]["batch"] == 4  # at most 2 micro-batches
    assert m["reflow_rf_m2"]["params_batch"] == 64 and m["distill_l2_m2"]["params_batch"] == 1024


def test_tiny_mode_costs_follow_the_schedule(tiny_run):
    _, rec = tiny_run
    stage1 = next(r for r in rec["cost"]["rows"] if r["what"].startswith("reflow stage 1"))
    rate = rec["measurements"]["reflow_rf_m2"]["per_s"]
    assert stage1["samples"] == 64 * 70000 and math.isclose(stage1["gpu_days"], 64 * 70000 / rate / 86400)
    assert stage1["paper_a100_days"] == 11.2 and math.isclose(stage1["paper_per_s_per_a100"], 64 * 70000 / (11.2 * 86400))
    lpips = next(r for r in rec["cost"]["rows"] if "lpips" in r["what"])
    assert lpips["runs"] == 2 and math.isclose(lpips["gpu_days_all_runs"], 2 * lpips["gpu_days"])
    assert rec["cost"]["rows"][-2]["paper_a100_days"] == 199 and rec["cost"]["notes"]


def test_cost_rows_arithmetic():
    cfg = compose("instaflow", "full")
    measured = {k: {"per_s": 2.0} for k in ("pairs_sd", "pairs_rf2", "reflow_rf_m32", "distill_l2_m32", "distill_lpips_m8")}
    rows = bench.cost_rows(cfg, measured, bench.paper_costs())
    days = {r["what"]: r["gpu_days_all_runs"] for r in rows}
    pairs = 1_250_000 / 2.0 / 86400
    train = (64 * 70000 + 1024 * 25000) / 2.0 / 86400
    distill = (1024 * 21500 + 1024 * 18000) / 2.0 / 86400
    assert math.isclose(days["pairs, both teachers (the paper: data generation)"], 2 * pairs)
    assert math.isclose(days["InstaFlow-0.9B: pairs + reflow + one distillation"], 2 * pairs + train + distill)
    assert math.isclose(days["the full DAG: both distillation arms (evaluation not timed)"], 2 * pairs + train + 2 * distill)
    paper = [r["paper_a100_days"] for r in rows]
    assert paper == [None, None, 16, 11.2, 64, 54.4, 53.6, 199, None]


def test_sd15_config_has_the_published_sizes():
    """859,520,964 (UNet), 123,060,480 (CLIP ViT-L/14 text), 83,653,863 (VAE): SD 1.5's counts."""
    with torch.device("meta"):
        parts = arch.parts(arch.SD15, arch.SD15["text_encoder"]["vocab_size"])
    assert {k: arch.parameter_count(v) for k, v in parts.items()} == {
        "text_encoder": 123_060_480, "unet": 859_520_964, "vae": 83_653_863}


def test_without_cuda_the_check_stops_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no CUDA GPU is visible to torch") and "--device cpu --tiny" in err
    assert gpu_check.main(["--device", "cpu"]) == 2
    assert "needs --tiny" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_pytest_device_cuda_is_refused_without_a_gpu():
    res = subprocess.run([sys.executable, "-m", "pytest", "tests/test_gpu_check.py", "--device", "cuda", "--collect-only", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=patient(120))
    assert res.returncode != 0 and "--device cuda: no CUDA GPU" in res.stdout + res.stderr
