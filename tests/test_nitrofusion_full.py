"""NitroFusion's full-scale code path (steps.nitrofusion.sdxl) end to end on CPU: every phase's
main(cfg) with params/nitrofusion/full.yaml shrunk by overrides, on a tiny randomly initialised
SDXL-shaped model (two text encoders, text_time added conditioning; steps.nitrofusion.sdxl.models.
tiny_sdxl), a tiny CLIP and small local LAION / COCO fixtures. Nothing is downloaded; the numbers
mean nothing, the plumbing and the mechanism's bookkeeping are what is tested."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from steps.core import checkpoint
from steps.core import metrics as metricslib
from steps.core.cli import load
from steps.core.io import load_npz
from tests.conftest import ROOT, Killed, device_arg, die_after, snakemake

CAPTIONS = ["a red bus on a street", "two cats on a sofa", "a plate of food", "a man riding a horse"]
SMALL = ["scale=full", device_arg(), "threads=1", "prompts.n_train=8", "prompts.n_eval=4", "gen_reals.n=8",
         "gen_reals.shards=2", "gen_reals.resolution=64", "gen_reals.steps=2", "gen_reals.batch=4",
         "train.steps=3", "train.batch=4", "train.micro_batch=2", "train.heads_per_group=4", "train.per_step=1",
         "train.gradient_checkpointing=false", "discriminator.hidden=8", "discriminator.refresh.every=2",
         "discriminator.refresh.share=0.125", "sample.n=4", "sample.batch=2", "sample.steps=[1,2]",
         "sample.resolution=64", "fid_clip.resolution=32", "fid_clip.fid_features=steps.instaflow.sd.models:tiny_fid_features"]


def run_phase(module: str, phase: str, *args: str):
    from importlib import import_module

    cfg = load("nitrofusion", phase, [*SMALL, *args])
    return import_module(f"steps.nitrofusion.sdxl.{module}").main(cfg)


@pytest.fixture(scope="module")
def reals(tmp_path_factory) -> dict:
    """Tiny SDXL + CLIP, LAION / COCO fixtures → fetch (sdxl, local) → prompts → 2 reals shards."""
    from PIL import Image

    from steps.instaflow.sd.models import tiny_clip
    from steps.nitrofusion.sdxl.models import tiny_sdxl

    root = tmp_path_factory.mktemp("nitro_full")
    src, d = root / "src", root / "data"
    tiny_sdxl(src / "sdxl")
    tiny_clip(src / "clip")
    (src / "laion").mkdir()
    pd.DataFrame({"caption": [f"{c} {i}" for i in range(3) for c in CAPTIONS]}).to_parquet(src / "laion" / "p.parquet")
    coco = d / "coco"
    (coco / "val2017").mkdir(parents=True)
    (coco / "annotations").mkdir()
    rng = np.random.default_rng(0)
    ann = {"images": [], "annotations": []}
    for i, cap in enumerate(CAPTIONS):
        name = f"{i + 1:012d}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(coco / "val2017" / name)
        ann["images"].append({"id": i + 1, "file_name": name})
        ann["annotations"].append({"id": i, "image_id": i + 1, "caption": cap})
    (coco / "annotations" / "captions_val2017.json").write_text(json.dumps(ann))
    run_phase("fetch", "fetch", f"sd.assets.sdxl.local_dir={src / 'sdxl'}", f"io.cache={d / 'downloads'}", f"io.sdxl={d / 'sdxl'}")
    run_phase("prompts", "prompts", f"io.laion={src / 'laion'}", f"io.coco={coco}", f"io.train={d / 'train.parquet'}",
              f"io.eval={d / 'eval.parquet'}")
    for shard in (0, 1):
        run_phase("gen_reals", "gen_teacher_reals", f"gen_reals.shard={shard}", f"io.sdxl={d / 'sdxl'}",
                  f"io.prompts={d / 'train.parquet'}", f"io.out={d / 'reals' / f'shard{shard:04d}.npz'}")
    return {"src": src, "data": d}


def train_args(reals, out) -> list[str]:
    d = reals["data"]
    return ["train.start=dmd2", f"io.sdxl={d / 'sdxl'}", f"io.start={reals['src'] / 'sdxl' / 'dmd2'}",
            f"io.reals={d / 'reals'}", f"io.prompts={d / 'train.parquet'}", f"io.out={out}"]


@pytest.fixture(scope="module")
def trained(reals, tmp_path_factory):
    out = tmp_path_factory.mktemp("nitro_models") / "nitro_dmd2.pt"
    assert run_phase("train", "train_nitro", *train_args(reals, out)) == {"steps": 3, "refreshes": 1}
    return out


@pytest.mark.device
def test_full_pipeline_on_tiny_sdxl(reals, trained, tmp_path):
    pytest.importorskip("torchmetrics", reason="full-scale FID needs torchmetrics (pyproject extra full-eval)")
    from steps.nitrofusion.sdxl import models

    d, src = reals["data"], reals["src"]
    assert json.loads((d / "sdxl.lock.json").read_text())["files"]
    s0 = load_npz(d / "reals" / "shard0000.npz")
    assert s0["x1"].shape == (4, 4, 8, 8) and s0["x1"].dtype == np.float16 and list(s0["index"]) == [0, 1, 2, 3]
    assert np.isfinite(s0["x1"]).all()

    payload = checkpoint.load(trained)
    meta = payload["state"]["meta"]
    assert payload["step"] == 3 and meta["start"] == "dmd2" and not trained.with_name(trained.name + ".resume.pt").exists()
    assert meta["unet_config"]["addition_embed_type"] == "text_time" and meta["train"]["heads"] == 16
    (event,) = meta["refresh"]
    assert event[0] == 2 and len(event[1]) == 2  # 12.5 % of 16 heads at step 2
    tuned, base = models.load_unet(trained), models.load_start(src / "sdxl" / "dmd2", d / "sdxl")
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), base.state_dict().values(), strict=True))

    for start in ("dmd2", "hypersd"):  # the same tuned weights stand in for both starts' runs
        run_phase("sample", "sample_coco5k", f"sample.start={start}", f"io.sdxl={d / 'sdxl'}",
                  f"io.start={src / 'sdxl' / start}", f"io.tuned={trained}", f"io.prompts={d / 'eval.parquet'}",
                  f"io.out={d / f'samples_{start}'}")
    man = json.loads((d / "samples_dmd2" / "manifest.json").read_text())
    assert set(man["variants"]) == {"base_n1", "base_n2", "nitro_n1", "nitro_n2"}
    assert man["variants"]["nitro_n2"]["timesteps"] == [999, 499] and man["variants"]["nitro_n2"]["unet_timesteps"] == [249, 124]
    hyper = json.loads((d / "samples_hypersd" / "manifest.json").read_text())["variants"]["base_n1"]
    assert hyper["timesteps"] == [999] and hyper["unet_timesteps"] == [499]
    assert len(list((d / "samples_dmd2" / "nitro_n2").glob("*.png"))) == 4

    r = tmp_path / "results"
    run_phase("evaluate", "eval_fid_clip", f"io.samples={d}", f"io.prompts={d / 'eval.parquet'}", f"io.coco={d / 'coco'}",
              f"io.inception={d / 'inception'}", f"io.clip={src / 'clip'}", f"io.results={r}")
    fid = metricslib.read(r / "fid.json")
    assert fid["scale"] == "full" and set(fid["values"]) == {"dmd2", "hypersd"}
    assert set(fid["values"]["dmd2"]) == {"base", "nitro"} and set(fid["values"]["dmd2"]["nitro"]) == {"n1", "n2"}
    assert all(np.isfinite(v["mean"]) for v in fid["values"]["hypersd"]["base"].values())
    clip = metricslib.read(r / "clip.json")["values"]
    assert all(-1 <= v["mean"] <= 1 for v in clip["dmd2"]["nitro"].values())


def test_refresh_reinitialises_exactly_the_drawn_heads(reals):
    from steps.nitrofusion.sdxl import models
    from steps.nitrofusion.sdxl.discriminator import SDXLPool
    from steps.nitrofusion.sdxl.train import pool_spec

    cfg = load("nitrofusion", "train_nitro", SMALL)
    sd = models.load(reals["data"] / "sdxl")
    pool = SDXLPool(pool_spec(cfg), sd.unet, 16, torch.Generator().manual_seed(0))
    assert len(pool.heads) == 16 and {h.kind for h in pool.heads} == {"global", "local"}
    assert {h.cond for h in pool.heads} == {True, False}
    opt = torch.optim.AdamW(pool.parameters(), lr=0.1)
    text = models.TextXL(sd.tokenizers, sd.text_encoders, 64)
    c = text(CAPTIONS)
    groups = torch.arange(4)
    chosen = [[g * 4 + j for j in range(4)] for g in range(4)]  # every head, so every head has Adam state
    ac = models.alphas_cumprod(sd.scheduler_config)
    s = pool.scores(ac, torch.randn(4, 4, 8, 8), c, text.nulls(4), pool.draw_t(groups, torch.Generator()),
                    torch.randn(4, 4, 8, 8), groups, chosen)
    assert [tuple(v.shape) for v in s[:4]] == [(1,), (1,), (1, 4, 4), (1, 4, 4)]  # global then local heads
    torch.stack([v.mean() for v in s]).sum().backward()
    opt.step()
    before = pool.checksums()
    ids = pool.refresh(torch.Generator().manual_seed(3), opt)
    after = pool.checksums()
    assert len(ids) == 2 and [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a] == ids
    fresh = {id(p) for i in ids for p in pool.heads[i].parameters()}
    assert all((id(p) in fresh) != (p in opt.state) for p in pool.parameters())


@pytest.mark.device
def test_train_resumes_after_a_kill(reals, trained, tmp_path, monkeypatch):
    """A run stopped after step 1 (its resume checkpoint kept) continues to the uninterrupted result."""
    from steps.nitrofusion.sdxl import models

    out = tmp_path / "nitro_dmd2.pt"
    with monkeypatch.context() as m, pytest.raises(Killed):  # the same config: only a resume of it is resumed
        m.setattr(checkpoint.TrainLoop, "checkpoint", die_after(checkpoint.TrainLoop.checkpoint))
        run_phase("train", "train_nitro", *train_args(reals, out), "ckpt.every_steps=1")
    resume = out.with_name(out.name + ".resume.pt")
    assert checkpoint.load(resume)["step"] == 1
    run_phase("train", "train_nitro", *train_args(reals, out))
    assert not resume.exists()
    segments = checkpoint.load(out)["state"]["meta"]["train"]["segments"]
    assert [s["from_step"] for s in segments] == [0, 1]
    a, b = models.load_unet(out).state_dict(), models.load_unet(trained).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_full_dry_run_plans_every_rule():
    res = snakemake(ROOT, "-n", "nitrofusion", "--config", "scale=full", "papers=nitrofusion")
    for rule in ("nitrofusion_fetch", "nitrofusion_prompts", "nitrofusion_gen_teacher_reals", "nitrofusion_train_nitro",
                 "nitrofusion_sample_coco5k", "nitrofusion_eval_fid_clip", "report"):
        assert rule in res.stdout, rule
