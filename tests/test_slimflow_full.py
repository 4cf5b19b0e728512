"""SlimFlow's full-scale code path (CIFAR-10, U-Nets) end to end on CPU: every phase's main(cfg)
with params/slimflow/full.yaml, shrunk by overrides, on a tiny random velocity U-Net teacher, a
tiny CIFAR-like archive and random LPIPS weights served as file:// URLs. Nothing is downloaded;
the numbers mean nothing, the plumbing is what is tested. (The full DAG's dry run is tests/test_workflow.py's, for every paper.)"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from steps.core import metrics as metricslib
from steps.core.cli import load
from steps.core.config import compose
from steps.core.io import load_npz
from tests.conftest import device_arg

PHASES = ("fetch", "pairs", "reflow", "distill", "fid50k", "report")
TINY_UNET = ["model.nf=8", "model.num_res_blocks=1", "model.ch_mult=[1,2]", "model.attn_resolutions=[]", "model.dropout=0.0"]


def test_full_config_composes_and_marks_gpu_rules():
    for phase in PHASES:
        assert compose("slimflow", "full", phase=phase).phase == phase
    cfg = compose("slimflow", "full")
    assert cfg.model.kind == "unet" and cfg.reflow.warmup_K == 300000 and cfg.eval.n_gen == 50000
    for rule in ("pairs", "reflow", "distill", "fid50k"):
        assert {"gpu", "gpu_model", "cpus_per_gpu", "mem_mb", "runtime"} <= set(cfg.resources[rule])
    assert "gpu" not in cfg.resources.fetch


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    from steps.nn.diffusers_unet_velocity import VelocityUNet, unet_config
    from steps.nn.lpips import LPIPS

    root = tmp_path_factory.mktemp("slimflow_full_fixtures")
    rng = np.random.default_rng(0)
    with tarfile.open(root / "cifar.tar.gz", "w:gz") as tar:
        for i in range(1, 6):
            blob = pickle.dumps({"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0] * 4})
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{i}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    torch.manual_seed(0)
    teacher = VelocityUNet(unet_config(32, 3, 8, 1, [1, 2], []))
    teacher.unet.save_pretrained(root / "teacher")
    net = LPIPS()
    trunk = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    torch.save(trunk, root / "alexnet.pth")
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("lin")}, root / "alex.pth")
    (root / "inception.pth").write_bytes(b"not used by the tiny FID features")
    return root


def run_phase(phase: str, *args: str):
    from importlib import import_module

    small = ["scale=full", device_arg(), "pairs.n=8", "pairs.ode_steps=2", "pairs.batch=4", *TINY_UNET,
             "reflow.steps=3", "reflow.batch=4", "reflow.warmup_K=2", "reflow.standard_1rf_steps=2",
             "distill.steps=2", "distill.batch=4", "eval.n_gen=6", "eval.batch=3",
             "eval.fid_features=steps.instaflow.sd.models:tiny_fid_features"]
    small = [a for a in small if a.split("=")[0].split(".")[0] in (*load("slimflow", phase, ["scale=full"]).phase_reads,
                                                                   "scale", "device")]
    module = "steps.core.report" if phase == "report" else f"steps.slimflow.{phase}"
    cfg = load("slimflow", phase, [*small, *args]) if phase != "report" else None
    return import_module(module).main(cfg) if cfg is not None else None


@pytest.mark.device
def test_full_pipeline_on_tiny_models(fixtures, tmp_path):
    pytest.importorskip("torchmetrics", reason="full-scale FID needs torchmetrics")
    from steps.slimflow.common import load_model

    r, d, m = fixtures, tmp_path / "data", tmp_path / "models"
    md5 = hashlib.md5((r / "cifar.tar.gz").read_bytes(), usedforsecurity=False).hexdigest()
    files = (f"[{{url:'{(r / 'inception.pth').as_uri()}',name:weights-inception-2015-12-05-6726825d.pth,sha256:null,size:null}},"
             f"{{url:'{(r / 'alexnet.pth').as_uri()}',name:alexnet-owt-7be5be79.pth,sha256:null,size:null}},"
             f"{{url:'{(r / 'alex.pth').as_uri()}',name:lpips_v0.1_alex.pth,sha256:null,size:null}}]")
    run_phase("fetch", f"fetch.teacher_dir={r / 'teacher'}", f"fetch.cifar10.url={(r / 'cifar.tar.gz').as_uri()}",
              f"fetch.cifar10.size={(r / 'cifar.tar.gz').stat().st_size}", f"fetch.cifar10.md5={md5}", f"fetch.files={files}",
              f"io.cache={d / 'cache'}", f"io.out={d / 'cifar.npz'}", f"io.weights={d / 'weights'}", f"io.teacher={m / 'teacher'}")
    assert load_npz(d / "cifar.npz")["images"].shape == (20, 3, 32, 32)
    assert (d / "weights" / "lock.json").is_file() and (m / "teacher" / "config.json").is_file()

    run_phase("pairs", f"io.teacher={m / 'teacher'}", f"io.images={d / 'cifar.npz'}", f"io.out={d / 'pairs.npz'}")
    pairs = load_npz(d / "pairs.npz")
    assert pairs["z"].shape == pairs["x1"].shape == (8, 3, 32, 32) and not np.allclose(pairs["z"], pairs["x1"])

    for arm in ("scratch", "standard", "anneal", "independent"):
        run_phase("reflow", f"reflow.arm={arm}", f"io.pairs={d / 'pairs.npz'}", f"io.images={d / 'cifar.npz'}",
                  f"io.out={m / f'2rf_small_{arm}_s0.pt'}")
    flow = load_model(m / "2rf_small_anneal_s0.pt")
    assert flow(torch.zeros(2, 3, 32, 32), torch.rand(2), torch.zeros(2, 0)).shape == (2, 3, 32, 32)
    assert load_model(m / "2rf_small_standard_s0.pt", snapshot="rf1_small") is not None
    for arm in ("naive", "fgd"):
        run_phase("distill", f"distill.arm={arm}", f"io.init={m / '2rf_small_anneal_s0.pt'}", f"io.pairs={d / 'pairs.npz'}",
                  f"io.images={d / 'cifar.npz'}", f"io.lpips={d / 'weights'}", f"io.out={m / f'student_{arm}_s0.pt'}")
    run_phase("fid50k", f"io.images={d / 'cifar.npz'}", f"io.inception={d / 'weights'}", f"io.models={m}",
              f"io.results={tmp_path / 'results'}")
    fid = metricslib.read(tmp_path / "results" / "fid.json")
    assert fid["scale"] == "full"
    assert set(fid["values"]["one_step"]) == {"scratch", "standard", "anneal", "independent", "rf1_small", "naive", "fgd"}
    assert all(np.isfinite(v["mean"]) for v in fid["values"]["one_step"].values())
    assert metricslib.read(tmp_path / "results" / "params.json")["values"]["student"] > 0
