"""asd at full scale: the config composes with GPU resources on the GPU rules, the fetch step
assembles an asset from a local fixture with a lock of SHA-256s, a phase without its inputs
fails with one clear line, and every full-scale phase's main(cfg) runs on CPU on tiny randomly
initialised SD-shaped models (steps.instaflow.sd.models.tiny_sd / tiny_clip, a tiny
channel-concat SR UNet) and a small local image/caption fixture. Nothing is downloaded; the
numbers mean nothing, the plumbing and the mechanism's bookkeeping are what is tested."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from steps.core import checkpoint
from steps.core.cli import load
from steps.core.config import compose
from tests.conftest import ROOT, Killed, device_arg, die_after, snakemake


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


def test_missing_source_and_missing_io_are_one_line(tmp_path, step_env):
    res = step("-m", "steps.asd.full.fetch", "scale=full", f"io.cache={tmp_path}", f"io.mm_celeba_hq={tmp_path / 'c'}", env=step_env)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error: asset mm_celeba_hq")
    res = step("-m", "steps.asd.full.train_arad", "scale=full", env=step_env)
    assert res.returncode == 2 and "needs io.sd=<path>" in res.stderr.strip().splitlines()[-1]


SMALL = ["scale=full", device_arg(), "threads=1", "full.ratios=[[32,32],[32,48],[48,32]]",
         "full.generate.n_per_ratio=2", "full.generate.steps=2", "full.generate.batch=2",
         "full.train.stages=[{batch:2,steps:3}]", "full.train.micro_batch=1", "full.train.gradient_checkpointing=false",
         "full.eval.fid_features=steps.instaflow.sd.models:tiny_fid_features", "full.eval.resolution=32", "full.eval.batch=2",
         "full.upscale.sizes=[[64,96]]", "full.upscale.tile=4", "full.upscale.max_offset=2", "full.upscale.stride=2",
         "full.upscale.steps=3", "full.upscale.reset_every=2", "full.upscale.n=1"]


def run_phase(phase: str, *args: str):
    from importlib import import_module

    return import_module(f"steps.asd.full.{phase}").main(load("asd", phase, [*SMALL, *args]))


def tiny_sr(folder, sd) -> None:
    """A StableSR-like SR folder: a tiny UNet on [noisy latent, LR latent] (8 channels), SD's VAE
    and a DDPM scheduler; no text encoder (zero text condition)."""
    import shutil

    from diffusers import DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(1)
    UNet2DConditionModel(sample_size=8, in_channels=8, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                         norm_num_groups=8, cross_attention_dim=32, attention_head_dim=4,
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).save_pretrained(folder / "unet")
    shutil.copytree(sd / "vae", folder / "vae")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(folder / "scheduler")


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> dict:
    from PIL import Image

    from steps.instaflow.sd.models import tiny_clip, tiny_sd

    root = tmp_path_factory.mktemp("asd_full")
    tiny_sd(root / "sd", sample_size=4)
    tiny_clip(root / "clip")
    tiny_sr(root / "sr", root / "sd")
    rng = np.random.default_rng(0)
    laion = root / "laion" / "00000"
    laion.mkdir(parents=True)
    for i, (h, w) in enumerate([(40, 40), (36, 60), (60, 36), (40, 44), (30, 50), (50, 30), (40, 40), (32, 48)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(laion / f"{i:04d}.jpg")
        (laion / f"{i:04d}.txt").write_text(f"a photo number {i}")
    return {"root": root, "sd": root / "sd", "laion": root / "laion", "clip": root / "clip", "sr": root / "sr"}


def train_args(fx, out):
    return [f"io.sd={fx['sd']}", f"io.laion={fx['laion']}", f"io.out={out}"]


@pytest.fixture(scope="module")
def arad(fx):
    out = fx["root"] / "arad_unet.pt"
    res = run_phase("train_arad", *train_args(fx, out))
    assert res["steps"] == 3 and sum(res["micro_batches_per_bucket"].values()) == 6  # 3 steps × 2 micro-batches
    return out


@pytest.mark.device
def test_train_arad_one_bucket_per_batch(arad):
    meta = checkpoint.load(arad)["state"]["meta"]
    assert meta["init"] == "sd21" and meta["ratios"] == [[32, 32], [32, 48], [48, 32]]
    # every micro-batch count is a multiple of the accumulation (one bucket per global batch)
    assert all(v % 2 == 0 for v in meta["micro_batches_per_bucket"].values())
    assert not arad.with_name(arad.name + ".resume.pt").exists()


@pytest.mark.device
def test_train_arad_resumes_after_a_kill(fx, arad, tmp_path, monkeypatch):
    from steps.instaflow.sd import models

    out = tmp_path / "arad.pt"
    with monkeypatch.context() as m, pytest.raises(Killed):  # the same config: only a resume of it is resumed
        m.setattr(checkpoint.TrainLoop, "checkpoint", die_after(checkpoint.TrainLoop.checkpoint))
        run_phase("train_arad", *train_args(fx, out), "ckpt.every_steps=1")
    resume = out.with_name(out.name + ".resume.pt")
    assert checkpoint.load(resume)["step"] == 1
    run_phase("train_arad", *train_args(fx, out))
    assert not resume.exists()
    assert [s["from_step"] for s in checkpoint.load(out)["state"]["meta"]["train"]["segments"]] == [0, 1]
    a, b = models.load_unet(out).state_dict(), models.load_unet(arad).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.device
def test_generate_and_fid_clip(fx, arad):
    from PIL import Image

    gen = fx["root"] / "gen"
    run_phase("generate", f"io.sd={fx['sd']}", f"io.laion={fx['laion']}", f"io.out={gen}/generated_sd21")
    out_arad = gen / "generated_arad"
    run_phase("generate", f"io.sd={fx['sd']}", f"io.laion={fx['laion']}", f"io.unet={arad}", f"io.out={out_arad}")
    man = json.loads((out_arad / "manifest.json").read_text())
    assert man["arm"] == "arad" and set(man["ratios"]) == {"32x32", "32x48", "48x32"}
    with Image.open(out_arad / "32x48" / "000001.png") as im:
        assert im.size == (48, 32)
    before = (out_arad / "48x32" / "000000.png").stat().st_mtime_ns  # resumable: kept, not redrawn
    run_phase("generate", f"io.sd={fx['sd']}", f"io.laion={fx['laion']}", f"io.unet={arad}", f"io.out={out_arad}")
    assert (out_arad / "48x32" / "000000.png").stat().st_mtime_ns == before
    res = fx["root"] / "fid_clip.json"
    values = run_phase("fid_clip", f"io.laion={fx['laion']}", f"io.generated={gen}", f"io.clip={fx['clip']}", f"io.out={res}")
    for arm in ("sd21", "arad"):
        assert set(values["fid"][arm]) == {"r32x32", "r32x48", "r48x32"}
        assert all(-1 <= v["mean"] <= 1 for v in values["clip"][arm].values())
    assert json.loads(res.read_text())["metric"] == "fid_clip"


@pytest.mark.device
def test_upscale_full_fstd_calls_like_non_overlap(fx, tmp_path):
    from PIL import Image

    gen = tmp_path / "generated_arad" / "32x48"
    gen.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(gen / "000000.png")
    values = run_phase("upscale_full", f"io.stablesr={fx['sr']}", f"io.generated={gen.parent}", f"io.out={tmp_path / 'f.json'}")
    row = values["s64x96"]  # latent 8 × 12, tiles of 4: 2 × 3 per step, overlap (stride 2) 3 × 5
    assert row["fstd"]["calls"] == row["non_overlap"]["calls"] == 6 * 3
    assert row["overlap"]["calls"] == 15 * 3
    assert all(np.isfinite(row[m]["psnr"]) and row[m]["seam"] > 0 for m in ("non_overlap", "overlap", "fstd"))


def test_stablesr_checkpoint_without_conversion_is_one_error(tmp_path):
    from steps.core.errors import ArtifactError

    (tmp_path / "sr").mkdir()
    with pytest.raises(ArtifactError, match="converted to diffusers format"):
        run_phase("upscale_full", f"io.stablesr={tmp_path / 'sr'}", f"io.generated={tmp_path}", f"io.out={tmp_path / 'o.json'}")


def test_full_dry_run_plans_every_rule():
    res = snakemake(ROOT, "-n", "asd", "--config", "scale=full", "papers=asd")
    for rule in ("asd_fetch", "asd_train_arad", "asd_generate", "asd_fid_clip", "asd_upscale_full", "report"):
        assert rule in res.stdout, rule
