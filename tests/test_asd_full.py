"""asd at full scale: the config composes with GPU resources on the GPU rules, the fetch step
assembles an asset from a local fixture with a lock of SHA-256s, and the phases not implemented
yet fail with one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

from steps.core.config import compose
from tests.conftest import ROOT


def test_full_config_marks_gpu_rules():
    cfg = compose("asd", "full")
    for phase in ("train_arad", "generate", "fid_clip", "upscale_full"):
        assert int(cfg.resources[phase].gpu) >= 1
    assert int(cfg.resources.train_arad.gpu) == 8
    assert "gpu" not in cfg.resources.fetch


def step(*args, env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_fetch_from_a_local_fixture(tmp_path, step_env):
    src = tmp_path / "sd21_src"
    (src / "unet").mkdir(parents=True)
    (src / "model_index.json").write_text("{}")
    (src / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    out = tmp_path / "data" / "sd21"
    res = step("-m", "steps.asd.full.fetch", "scale=full", f"full.assets.sd21.local_dir={src}",
               f"io.cache={tmp_path / 'cache'}", f"io.sd21={out}", env=step_env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == b"weights"
    lock = json.loads((tmp_path / "data" / "sd21.lock.json").read_text())
    assert "unet/diffusion_pytorch_model.safetensors" in lock["files"]


def test_missing_source_and_unimplemented_phase_are_one_line(tmp_path, step_env):
    res = step("-m", "steps.asd.full.fetch", "scale=full", f"io.cache={tmp_path}", f"io.mm_celeba_hq={tmp_path / 'c'}", env=step_env)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error: asset mm_celeba_hq")
    res = step("-m", "steps.asd.full.train_arad", "scale=full", env=step_env)
    assert res.returncode == 2 and "not implemented yet" in res.stderr.strip().splitlines()[-1]
