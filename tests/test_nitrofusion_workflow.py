"""The NitroFusion DAG through Snakemake: the smoke run end to end in a fresh copy of the repository
(InstaFlow's teacher and student built on the way), bad input as one line, and the full-scale
configuration's GPU rules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from steps.core import metrics
from tests.conftest import ROOT, patient, smoke_copy

METRICS = ["fid", "prompt_acc", "coverage", "d_overfit"]


@pytest.fixture(scope="module")
def nitro_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "nitrofusion")


def test_smoke_dag_end_to_end(nitro_smoke):
    res = nitro_smoke / "results" / "nitrofusion"
    for name in METRICS:
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "nitrofusion"
    fid = metrics.read(res / "fid.json")["values"]
    for start in ("distilled", "weak"):
        assert set(fid["one_step"][start]) == {"base", "single_head", "pool_no_refresh", "nitro", "nitro_no_local"}
        assert set(fid["refine"][start]["nitro"]) == {"n1", "n2", "n4"}
    d = metrics.read(res / "d_overfit.json")["values"]
    assert d["refresh_ok"]["weak"]["nitro"] == 1 and d["refresh_events"]["weak"]["nitro"] == 3
    assert d["refresh_events"]["weak"]["pool_no_refresh"] == 0 and d["d_steps"]["weak"]["nitro"] == 30
    report = (res / "report.md").read_text()
    assert "Smoke scale" in report and "**holds**" in report  # the refresh sanity check is evaluated at smoke
    for fig in ("fid_arms", "refinement", "d_gap", "samples"):
        assert (res / "figures" / f"{fig}.png").exists(), fig
    for job in ("adversarial_weak_s0", "adversarial_distilled_s0", "evaluate"):
        assert (nitro_smoke / "benchmarks" / "nitrofusion" / f"{job}.tsv").exists()
        assert "done: work" in (nitro_smoke / "logs" / "nitrofusion" / f"{job}.log").read_text()


def test_bad_input_is_one_line(tmp_path, step_env):
    res = subprocess.run([sys.executable, "-m", "steps.nitrofusion.adversarial", "scale=smoke", "adversarial.steps=many"],
                         cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=patient(60))
    assert res.returncode == 2 and "adversarial.steps" in res.stderr.strip().splitlines()[-1]
    res = subprocess.run([sys.executable, "-m", "steps.nitrofusion.adversarial", "scale=smoke", "adversarial.arms=[nope]",
                          f"io.teacher={tmp_path}/t.pt", f"io.student={tmp_path}/s.pt", f"io.digits={tmp_path}/d.npz",
                          f"io.captions={tmp_path}/c.npz", f"io.out={tmp_path}/o.pt"],
                         cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=patient(60))
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith('error: nitrofusion: adversarial.arms = ["nope"] is not valid')
    res = subprocess.run([sys.executable, "-m", "steps.nitrofusion.adversarial", "scale=smoke",
                          f"io.teacher={tmp_path}/t.pt", f"io.student={tmp_path}/s.pt", f"io.digits={tmp_path}/d.npz",
                          f"io.captions={tmp_path}/c.npz", f"io.out={tmp_path}/o.pt"],
                         cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=patient(60))
    assert res.returncode == 3 and res.stderr.strip().splitlines()[-1].startswith("error:")


def test_full_scale_config_marks_gpu_rules():
    # The full DAG's dry run is covered by tests/test_workflow.py (every paper, every scale).
    from steps.core.config import compose

    for phase in ("fetch", "prompts", "gen_teacher_reals", "train_nitro", "sample_coco5k", "eval_fid_clip"):
        assert compose("nitrofusion", "full", phase=phase).phase == phase
    cfg = compose("nitrofusion", "full")
    for rule in ("gen_teacher_reals", "train_nitro", "sample_coco5k", "eval_fid_clip"):
        assert cfg.resources[rule].gpu >= 1 and cfg.resources[rule].gpu_model == "a100", rule
    assert cfg.resources.train_nitro.gpu == 8 and "gpu" not in cfg.resources.fetch
    assert set(cfg.sd.assets) >= {"sdxl", "dmd2", "hypersd", "coco", "inception", "clip"}
