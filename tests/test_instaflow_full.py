"""InstaFlow's full-scale code path (steps.instaflow.sd) end to end on CPU: every phase's
main(cfg) with params/instaflow/full.yaml, shrunk by overrides, on tiny random Stable
Diffusion / CLIP models and small local fixtures (LAION-like parquet, COCO-like zips served as
file:// URLs). Nothing is downloaded; the numbers mean nothing, the plumbing is what is tested."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from steps.core import checkpoint
from steps.core import metrics as metricslib
from steps.core.cli import load
from steps.core.config import compose
from steps.core.io import load_npz, load_parquet, save_npz, save_parquet
from tests.conftest import device_arg, patient

PHASES = ("fetch", "prompts", "pairs", "reflow", "distill", "evaluate", "report")
CAPTIONS = ["a red bus on a street", "two cats on a sofa", "a plate of food", "a man riding a horse",
            "a kite in the sky", "the boat on the lake"]


def test_full_config_composes_for_every_phase():
    for phase in PHASES:
        cfg = compose("instaflow", "full", phase=phase)
        assert cfg.scale == "full" and cfg.phase == phase
    cfg = compose("instaflow", "full")
    assert [s.steps for s in cfg.reflow.stages] == [70000, 25000] and [s.batch for s in cfg.reflow.stages] == [64, 1024]
    assert dict(cfg.distill.budgets) == {"short": 21500, "long": 39500}
    for rule in ("pairs", "reflow", "distill", "evaluate"):
        assert {"gpu", "gpu_model", "cpus_per_gpu", "mem_mb", "runtime"} <= set(cfg.resources[rule])
    for rule in ("fetch", "prompts"):
        assert "gpu" not in cfg.resources[rule] and {"threads", "mem_mb", "runtime"} <= set(cfg.resources[rule])


def _lst(items: list[dict]) -> str:
    """A list of dicts as a Hydra override value."""
    def val(v):
        if v is None:
            return "null"
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, list):
            return "[" + ",".join(val(x) for x in v) + "]"
        return f"'{v}'" if isinstance(v, str) else str(v)
    return "[" + ",".join("{" + ",".join(f"{k}:{val(v)}" for k, v in d.items()) + "}" for d in items) + "]"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict:
    """Tiny SD and CLIP folders, a LAION-like parquet, COCO-like zips, LPIPS/Inception files."""
    from PIL import Image

    from steps.instaflow.sd import models
    from steps.nn.lpips import LPIPS

    root = tmp_path_factory.mktemp("full_fixtures")
    models.tiny_sd(root / "sd")
    models.tiny_clip(root / "clip")
    (root / "laion").mkdir()
    prompts = [f"{c} number {i}" for i in range(5) for c in CAPTIONS] + ["", "  "]
    pd.DataFrame({"url": [f"http://x/{i}" for i in range(len(prompts))], "caption": prompts}).to_parquet(root / "laion" / "part-0.parquet")
    rng = np.random.default_rng(0)
    ann = {"images": [], "annotations": []}
    with zipfile.ZipFile(root / "val2017.zip", "w") as z:
        for i in range(6):
            name = f"{i + 1:012d}.png"
            img = Image.fromarray(rng.integers(0, 255, (40 + 4 * i, 56, 3), dtype=np.uint8))
            img.save(root / name)
            z.write(root / name, f"val2017/{name}")
            ann["images"].append({"id": i + 1, "file_name": name})
            ann["annotations"] += [{"id": 10 * i + k, "image_id": i + 1, "caption": f"{CAPTIONS[i]} ({k})"} for k in range(2)]
    with zipfile.ZipFile(root / "annotations_trainval2017.zip", "w") as z:
        z.writestr("annotations/captions_val2017.json", json.dumps(ann))
        z.writestr("annotations/instances_val2017.json", "{}")
    net = LPIPS()
    trunk = {f"features.{k}": v for k, v in net.features.state_dict().items()} | {"classifier.1.weight": torch.zeros(2, 2)}
    torch.save(trunk, root / "alexnet-owt-7be5be79.pth")
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("lin")}, root / "alex.pth")
    (root / "inception.pth").write_bytes(b"not used by the tiny FID features")
    return {"root": root}


def _assets(fx) -> list[str]:
    r = fx["root"]
    coco = [{"url": (r / "val2017.zip").as_uri(), "sha256": None, "unzip": True},
            {"url": (r / "annotations_trainval2017.zip").as_uri(), "sha256": None, "unzip": True,
             "members": ["annotations/captions_val2017.json"]}]
    lpips = [{"url": (r / "alexnet-owt-7be5be79.pth").as_uri(), "name": "alexnet-owt-7be5be79.pth", "sha256": None},
             {"url": (r / "alex.pth").as_uri(), "name": "lpips_v0.1_alex.pth", "sha256": None}]
    return [f"sd.assets.sd15.local_dir={r / 'sd'}", f"sd.assets.clip.local_dir={r / 'clip'}",
            f"sd.assets.laion.local_dir={r / 'laion'}", f"sd.assets.coco.files={_lst(coco)}",
            f"sd.assets.lpips.files={_lst(lpips)}",
            f"sd.assets.inception.files={_lst([{'url': (r / 'inception.pth').as_uri(), 'name': 'weights.pth'}])}"]


SMALL = ["scale=full", device_arg(), "prompts.n_train=12", "prompts.n_eval=6", "pairs.shards=2", "pairs.resolution=64",
         "pairs.batch=4", "pairs.ode_steps=2", "pairs.rf2.ode_steps=2", "reflow.micro_batch=2",
         "reflow.stages=[{batch:4,steps:2},{batch:2,steps:1}]", "distill.micro_batch=2",
         "distill.stages=[{loss:l2,batch:4,steps:2},{loss:lpips,batch:2,steps:1,micro_batch:1}]",
         "distill.budgets={short:2,long:3}", "eval.n_gen=6", "eval.batch=3", "eval.multistep=[2]",
         "eval.straightness_steps=2", "eval.straightness_n=3", "eval.timing_n=2",
         "eval.fid_features=steps.instaflow.sd.models:tiny_fid_features"]


def run_phase(phase: str, *args: str):
    from importlib import import_module

    cfg = load("instaflow", phase, [*SMALL, *args])
    return import_module(f"steps.instaflow.sd.{phase}").main(cfg)


@pytest.fixture(scope="module")
def sd_pairs(fixtures, tmp_path_factory) -> dict:
    """fetch → prompts → SD pairs (2 shards), shared by the tests below."""
    tmp = tmp_path_factory.mktemp("full_run")
    d = tmp / "data"
    assets = ["sd15", "coco", "laion", "lpips", "inception", "clip"]
    run_phase("fetch", *_assets(fixtures), f"io.cache={d / 'downloads'}", *[f"io.{a}={d / a}" for a in assets])
    run_phase("prompts", f"io.laion={d / 'laion'}", f"io.coco={d / 'coco'}", f"io.train={d / 'train.parquet'}",
              f"io.eval={d / 'eval.parquet'}")
    common = [f"io.sd={d / 'sd15'}", f"io.prompts={d / 'train.parquet'}"]
    for shard in (0, 1):
        run_phase("pairs", "pairs.teacher=sd", f"pairs.shard={shard}", *common, f"io.out={d / 'pairs_sd' / f'shard{shard:04d}.npz'}")
    return {"data": d, "assets": assets, "common": common}


@pytest.mark.device
def test_full_pipeline_on_tiny_models(sd_pairs, tmp_path):
    pytest.importorskip("torchmetrics", reason="full-scale FID needs torchmetrics (pyproject extra full-eval)")
    from steps.instaflow.sd import models
    from steps.instaflow.sd.distill import load_students

    d, common = sd_pairs["data"], sd_pairs["common"]
    m, r = tmp_path / "models", tmp_path / "results"
    for a in sd_pairs["assets"]:
        lock = json.loads((d / f"{a}.lock.json").read_text())
        assert lock["files"] and all(len(f["sha256"]) == 64 for f in lock["files"].values())
    urls = json.loads((d / "coco.lock.json").read_text())["source"]["urls"]
    assert {u["pinned"] for u in urls.values()} == {False} and (d / "coco" / "val2017" / "000000000006.png").is_file()
    assert not (d / "coco" / "annotations" / "instances_val2017.json").exists()  # members filter

    train, evals = load_parquet(d / "train.parquet"), load_parquet(d / "eval.parquet")
    assert len(train) == 12 and train.text.str.strip().str.len().min() > 0 and len(evals) == 6
    s0 = load_npz(d / "pairs_sd" / "shard0000.npz")
    assert s0["x1"].shape == (6, 4, 8, 8) and s0["x1"].dtype == np.float16 and list(s0["index"]) == list(range(6))

    run_phase("reflow", *common, f"io.pairs={d / 'pairs_sd'}", f"io.out={m / 'rf2.pt'}")
    rf2 = models.load_unet(m / "rf2.pt")
    assert checkpoint.load(m / "rf2.pt")["step"] == 3 and not (m / "rf2.pt.resume.pt").exists()
    assert rf2(torch.zeros(1, 4, 8, 8), torch.tensor([500.0]), encoder_hidden_states=torch.zeros(1, 16, 32)).sample.shape == (1, 4, 8, 8)

    for shard in (0, 1):
        run_phase("pairs", "pairs.teacher=rf2", f"pairs.shard={shard}", *common, f"io.rf2={m / 'rf2.pt'}",
                  f"io.out={d / 'pairs_rf2' / f'shard{shard:04d}.npz'}")
    assert not np.array_equal(load_npz(d / "pairs_rf2" / "shard0000.npz")["x1"], s0["x1"])

    for arm in ("rf2", "sd"):
        init = [f"io.init={m / 'rf2.pt'}"] if arm == "rf2" else []
        run_phase("distill", f"distill.arm={arm}", *common, *init, f"io.lpips={d / 'lpips'}",
                  f"io.pairs={d / f'pairs_{arm}'}", f"io.out={m / f'distill_{arm}.pt'}")
        assert set(load_students(m / f"distill_{arm}.pt")) == {"short", "long"}

    run_phase("evaluate", f"io.sd={d / 'sd15'}", f"io.rf2={m / 'rf2.pt'}", f"io.student_rf2={m / 'distill_rf2.pt'}",
              f"io.student_sd={m / 'distill_sd.pt'}", f"io.eval_prompts={d / 'eval.parquet'}", f"io.coco={d / 'coco'}",
              f"io.inception={d / 'inception'}", f"io.clip={d / 'clip'}", f"io.results={r}")
    fid = metricslib.read(r / "fid.json")
    one = {"rf1", "rf2", "rf1_distill_short", "rf1_distill_long", "instaflow_short", "instaflow_long"}
    assert fid["scale"] == "full" and set(fid["values"]["one_step"]) == one
    assert set(fid["values"]["multistep"]) == {"rf1", "rf2"} and "n2" in fid["values"]["multistep"]["rf2"]
    assert fid["values"]["steps"]["rf2_n2"] == 2 and fid["values"]["steps"]["instaflow_long"] == 1
    assert all(np.isfinite(v["mean"]) for v in fid["values"]["one_step"].values())
    clip = metricslib.read(r / "clip.json")["values"]
    assert set(clip["one_step"]) == one and all(-1 <= v["mean"] <= 1 for v in clip["one_step"].values())
    assert set(metricslib.read(r / "straightness.json")["values"]) == {"rf1", "rf2"}
    assert set(metricslib.read(r / "sampling_time.json")["values"]) == one | {"rf1_n2", "rf2_n2"}


@pytest.mark.device
def test_pairs_shard_resumes_to_the_same_result(fixtures, tmp_path):
    """A shard killed midway continues from <out>.resume.npz and ends as the uninterrupted run."""
    prompts = tmp_path / "train.parquet"
    save_parquet(prompts, pd.DataFrame({"id": np.arange(8), "text": [*CAPTIONS, "x", "y"]}))
    args = ["pairs.teacher=sd", "pairs.shard=0", "pairs.shards=1", "pairs.ode_steps=2", "pairs.batch=3",
            f"io.sd={fixtures['root'] / 'sd'}", f"io.prompts={prompts}"]
    run_phase("pairs", *args, f"io.out={tmp_path / 'a.npz'}")
    full = load_npz(tmp_path / "a.npz")["x1"]
    partial = full.copy()
    partial[3:] = 0
    ident = checkpoint.identity(load("instaflow", "pairs", [*SMALL, *args]))  # what the shard's run is
    save_npz(tmp_path / "b.npz.resume.npz", x1=partial, done=np.array(3), identity=np.array(json.dumps(ident)))
    run_phase("pairs", *args, f"io.out={tmp_path / 'b.npz'}")
    assert np.array_equal(load_npz(tmp_path / "b.npz")["x1"], full) and not (tmp_path / "b.npz.resume.npz").exists()
    assert not (tmp_path / "b.npz.resume.npz.stale").exists()  # resumed, not set aside
    # a resume file of another config (here: another ODE) is set aside, and the shard starts over
    save_npz(tmp_path / "c.npz.resume.npz", x1=partial, done=np.array(3), identity=np.array(json.dumps(ident)))
    run_phase("pairs", *args, "pairs.ode_steps=3", f"io.out={tmp_path / 'c.npz'}")
    assert (tmp_path / "c.npz.resume.npz.stale").exists()
    assert not np.array_equal(load_npz(tmp_path / "c.npz")["x1"][:3], full[:3])


def test_sd_velocity_euler_step_is_a_ddim_step():
    """One Euler step of SD's velocity in rectified-flow time equals DDIM's update."""
    from types import SimpleNamespace

    from diffusers import DDIMScheduler

    from steps.instaflow.sd import models

    cfg = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    ac = DDIMScheduler(**cfg).alphas_cumprod.double()
    w = torch.randn(4, 4, 4, dtype=torch.float64)

    def unet(x, s, encoder_hidden_states):
        return SimpleNamespace(sample=torch.tanh(x * w))  # any ε-prediction

    v = models.sd_velocity(unet, cfg)
    s_a, s_b = 700, 400
    a_a, b_a, a_b, b_b = ac[s_a].sqrt(), (1 - ac[s_a]).sqrt(), ac[s_b].sqrt(), (1 - ac[s_b]).sqrt()
    tau_a, tau_b = a_a / (a_a + b_a), a_b / (a_b + b_b)
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    y = x / (a_a + b_a)
    y_next = y + (tau_b - tau_a) * v(y, tau_a.view(1), None)
    eps = torch.tanh(x * w)
    x0 = (x - b_a * eps) / a_a
    ddim = a_b * x0 + b_b * eps
    assert torch.allclose(y_next * (a_b + b_b), ddim, atol=1e-4)


@pytest.mark.slow
def test_reflow_data_parallel_under_torchrun(sd_pairs, tmp_path):
    """Two CPU processes (gloo), launched as the rule launches them (torchrun): shards split by
    rank, gradients all-reduced, one checkpoint written by rank 0 with the training record,
    rank 1's log in its own file."""
    import os
    import shlex
    import subprocess
    import sys

    from steps.core import distributed
    from steps.instaflow.sd import models

    d, out = sd_pairs["data"], tmp_path / "rf2.pt"
    prefix = distributed.launch_command({"gpu": 2}, shutdown_s=30, python=sys.executable)
    cmd = [*shlex.split(prefix), "-m", "steps.instaflow.sd.reflow",
           *[a for a in SMALL if not a.startswith("device=")], "device=cpu", "threads=2", *sd_pairs["common"],
           f"io.pairs={d / 'pairs_sd'}", f"io.out={out}"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=patient(300), cwd=root,
                         env={**os.environ, "PAPERZOO_RANK_LOGS": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rank 0/2" in res.stderr and "2 process(es) × 1 × 2" in res.stderr and "rank 1/2" not in res.stderr
    assert "rank 1/2" in (tmp_path / "reflow.rank1.log").read_text()
    models.load_unet(out)
    record = checkpoint.load(out)["state"]["meta"]["train"]
    assert record["world_size"] == 2 and record["launcher"] == "torchrun" and record["precision"] == "fp32"
    assert [s["effective_batch"] for s in record["stages"]] == [4, 2]
    assert not out.with_name("rf2.pt.resume.pt").exists()
