"""GPUSQ-ViT's full-scale code path on CPU: timm's DeiT weights converted into our ViT compute
what timm computes; the shared ImageNet loader streams deterministic minibatches from a class-
folder tree; and data (index) → dense (pretrained init) → prune → qat → ptq → evaluate run end
to end on a tiny fake ImageNet with a tiny randomly initialised DeiT-layout checkpoint."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from steps.core.cli import load
from steps.core.errors import ArtifactError, ConfigError
from steps.data import imagenet
from steps.gpusq_vit import deit
from steps.gpusq_vit.datasets import Streamed
from steps.gpusq_vit.vit import ViT
from tests.conftest import device_arg

PAPER = "gpusq_vit"
TINY = dict(image=32, patch=16, dim=24, depth=2, heads=2, mlp=48, classes=3, channels=3)


def timm_state_dict(image=32, patch=16, dim=24, depth=2, heads=2, mlp=48, classes=3, channels=3, seed=0) -> dict:
    """A random state_dict in timm's VisionTransformer layout (DeiT: qkv_bias, class token, no
    distillation token), the names and shapes of timm.models.vision_transformer."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.2):
        return torch.randn(*shape, generator=g) * s

    sd = {"cls_token": r(1, 1, dim), "pos_embed": r(1, (image // patch) ** 2 + 1, dim),
          "patch_embed.proj.weight": r(dim, channels, patch, patch, s=0.05), "patch_embed.proj.bias": r(dim),
          "norm.weight": 1 + r(dim), "norm.bias": r(dim), "head.weight": r(classes, dim), "head.bias": r(classes)}
    for i in range(depth):
        b = f"blocks.{i}."
        sd.update({b + "norm1.weight": 1 + r(dim), b + "norm1.bias": r(dim), b + "norm2.weight": 1 + r(dim), b + "norm2.bias": r(dim),
                   b + "attn.qkv.weight": r(3 * dim, dim), b + "attn.qkv.bias": r(3 * dim),
                   b + "attn.proj.weight": r(dim, dim), b + "attn.proj.bias": r(dim),
                   b + "mlp.fc1.weight": r(mlp, dim), b + "mlp.fc1.bias": r(mlp),
                   b + "mlp.fc2.weight": r(dim, mlp), b + "mlp.fc2.bias": r(dim)})
    return sd


def timm_reference_forward(sd: dict, x: torch.Tensor, heads: int) -> torch.Tensor:
    """timm's VisionTransformer.forward for DeiT, written out from its definition: stride-p conv
    patch embedding, class token prepended then pos_embed added, pre-norm blocks (LayerNorm eps
    1e-6, softmax(q kᵀ / √d_head) v with qkv split (3, heads, d_head), exact GELU MLP), final
    norm, head on the class token."""
    w = sd["patch_embed.proj.weight"]
    h = F.conv2d(x, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    h = torch.cat([sd["cls_token"].expand(len(h), -1, -1), h], 1) + sd["pos_embed"]
    b, t, d = h.shape
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})

    def ln(v, name):
        return F.layer_norm(v, (d,), sd[name + ".weight"], sd[name + ".bias"], eps=1e-6)

    for i in range(depth):
        p = f"blocks.{i}."
        qkv = F.linear(ln(h, p + "norm1"), sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) / math.sqrt(d // heads)).softmax(-1) @ v
        h = h + F.linear(a.transpose(1, 2).reshape(b, t, d), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        m = F.gelu(F.linear(ln(h, p + "norm2"), sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
        h = h + F.linear(m, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
    return F.linear(ln(h, "norm")[:, 0], sd["head.weight"], sd["head.bias"])


def converted(sd: dict) -> ViT:
    net = ViT(**TINY, norm_eps=1e-6)
    net.load_state_dict(deit.from_timm(sd, net))
    return net.eval()


def test_converted_deit_computes_what_the_timm_layout_computes():
    sd = timm_state_dict()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, ref = converted(sd)(x), timm_reference_forward(sd, x, heads=2)
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()
    # torch's LayerNorm eps (1e-5) would not: the eps is part of the architecture
    wrong = ViT(**TINY)
    wrong.load_state_dict(deit.from_timm(sd, wrong))
    assert not torch.allclose(wrong.eval()(x), ref, atol=1e-7)


def test_converted_deit_matches_timm_itself():
    timm = pytest.importorskip("timm", reason="timm (with a torchvision matching torch) not installed")
    net = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=16, embed_dim=24, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=3, qkv_bias=True)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(converted(net.state_dict())(x), net.eval()(x), atol=1e-5)


def test_deit_checkpoint_reading_and_clear_errors(tmp_path):
    sd = timm_state_dict()
    plain = tmp_path / "deit.pth"
    torch.save({"model": sd, "epoch": 299}, plain)  # the DeiT release wraps the state_dict in 'model'
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    hub = tmp_path / f"deit_tiny-{digest[:8]}.pth"
    plain.rename(hub)
    assert set(deit.read_checkpoint(hub)) == set(sd)
    bad = tmp_path / "deit_tiny-00000000.pth"
    bad.write_bytes(hub.read_bytes())
    with pytest.raises(ArtifactError, match="does not start with 00000000"):
        deit.read_checkpoint(bad)
    with pytest.raises(ArtifactError, match="dl.fbaipublicfiles.com"):
        deit.read_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(ArtifactError, match="no place for: dist_token"):  # a distilled DeiT
        deit.from_timm({**sd, "dist_token": torch.zeros(1, 1, 24)}, ViT(**TINY))
    with pytest.raises(ArtifactError, match="shape"):
        deit.from_timm(sd, ViT(**{**TINY, "classes": 5}))
    with pytest.raises(ArtifactError, match="lacks blocks.2"):
        deit.from_timm(sd, ViT(**{**TINY, "depth": 3}))


def fake_imagenet(root, classes=("n01", "n02", "n03"), per_class=(4, 2)):
    """<root>/{train,val}/<wnid>/*.JPEG: small random JPEGs of varied sizes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), per_class, strict=True):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 255, (36 + 3 * i, 40, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / c / f"{c}_{i}.JPEG")
    return root


def test_streamed_minibatches_are_deterministic_per_seed_and_epoch(tmp_path):
    root = fake_imagenet(tmp_path)
    cfg = load(PAPER, "data", ["scale=full", f"data.root={root}", "data.size=16", "data.n_train=12", "data.n_test=6"])
    folder = imagenet.Folder(cfg.data, "train", 12, 0)
    data = folder.decoded()

    def take(start, k, workers):
        it = imagenet.stream(data, 0, 5, start, workers)
        return [next(it) for _ in range(k)]

    run = take(0, 5, 0)  # 3 steps per epoch (5, 5, 2): steps 0-4 cross into epoch 1
    assert [len(y) for _, y in run] == [5, 5, 2, 5, 5] and run[0][0].shape == (5, 3, 16, 16)
    assert sorted(torch.cat([y for _, y in run[:3]]).tolist()) == sorted(folder.labels.tolist())  # one epoch = each image once
    for (xa, ya), (xb, yb) in zip(run[3:], take(3, 2, 2), strict=True):  # resumed at step 3, 2 decode workers
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(run[0][0][:2], run[3][0][:2])  # epoch 1: another order and other crops
    test = list(imagenet.sequential(imagenet.Folder(cfg.data, "test", 6, 0).decoded(), 4, 0))
    assert [len(y) for _, y in test] == [4, 2] and torch.cat([y for _, y in test]).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ConfigError, match="bicubic"):
        imagenet.decode(folder.files[0], 16, False, np.random.default_rng(0), "lanczos")
    # calibration / importance images: a seeded random draw (the listing is sorted by class), the same each time
    src = Streamed(cfg.data, workers=0, pin=False)
    (xa, ya), (xb, yb) = src.head(6), src.head(6)
    assert xa.shape == (6, 3, 16, 16) and torch.equal(xa, xb) and len(set(ya.tolist())) > 1


def full_argv(root, ckpt, *more):
    """The full-scale config made tiny: a DeiT-layout ViT at 32 px, one epoch of 2 steps per stage."""
    return ["scale=full", device_arg(), "threads=1", f"data.root={root}", "data.n_train=12", "data.n_test=6",
            "data.size=32", "data.eval_batch=4", "model.image=32", "model.dim=24", "model.depth=2", "model.heads=2",
            "model.mlp=48", "model.classes=3", f"dense.init_from={ckpt}", "kd.importance_n=4", "quant.calib_n=4",
            "prune.epochs=1", "prune.batch=6", "prune.warmup_steps=1", "prune.run=[sp24_kd]",
            "qat.epochs=1", "qat.batch=6", "qat.warmup_steps=1", "qat.run=[gpusq_int8]", *more]


@pytest.mark.device
def test_full_scale_path_end_to_end_on_a_fake_imagenet(tmp_path):
    from steps.gpusq_vit import data, dense, evaluate, prune, ptq, qat

    root = fake_imagenet(tmp_path / "imagenet")
    ckpt = tmp_path / "deit_tiny.pth"
    torch.save({"model": timm_state_dict()}, ckpt)
    index, models, results = tmp_path / "imagenet_index.json", tmp_path / "models", tmp_path / "results"

    def cfg(phase, *io):
        return load(PAPER, phase, full_argv(root, ckpt, *io))

    data.main(cfg("data", f"io.out={index}"))
    rec = json.loads(index.read_text())
    assert rec["splits"]["train"]["images"] == 12 and rec["splits"]["test"]["class_names"] == ["n01", "n02", "n03"]
    out = dense.main(cfg("dense", f"io.data={index}", f"io.out={models}/dense.pt"))
    assert 0 <= out["accuracy"] <= 1
    saved = torch.load(models / "dense.pt", weights_only=False)["state"]["model"]
    assert torch.equal(saved["patch_embed.weight"], timm_state_dict()["patch_embed.proj.weight"].reshape(24, -1))
    prune.main(cfg("prune", "io.arm=sp24_kd", f"io.data={index}", f"io.teacher={models}/dense.pt", f"io.out={models}/sp24_kd.pt"))
    qat.main(cfg("qat", "io.arm=gpusq_int8", f"io.data={index}", f"io.teacher={models}/dense.pt",
                 f"io.sparse={models}/sp24_kd.pt", f"io.out={models}/gpusq_int8.pt"))
    ptq.main(cfg("ptq", f"io.data={index}", f"io.dense={models}/dense.pt", f"io.sparse={models}/sp24_kd.pt", f"io.models={models}"))
    res = evaluate.main(cfg("evaluate", f"io.data={index}", f"io.models={models}", f"io.results={results}"))
    assert set(res["accuracy"]) == {"dense", "sp24_kd", "gpusq_int8", "ptq_int8", "ptq_int4", "dense_ptq_int8"}
    acc = json.loads((results / "accuracy.json").read_text())
    assert acc["scale"] == "full" and "6 ImageNet-1k validation images" in acc["description"]
    assert json.loads((results / "compression.json").read_text())["values"]["nm_valid"]["gpusq_int8"] == 1
    # the tree changed since it was indexed: one clear error, not silently other data
    (root / "train" / "n01" / "n01_0.JPEG").unlink()
    with pytest.raises(ArtifactError, match="differs from"):
        evaluate.main(cfg("evaluate", f"io.data={index}", f"io.models={models}", f"io.results={results}"))


def test_full_scale_data_phase_errors(tmp_path):
    from steps.gpusq_vit import data

    with pytest.raises(ArtifactError, match="user-provided"):
        data.main(load(PAPER, "data", ["scale=full", f"data.root={tmp_path}/none", f"io.out={tmp_path}/i.json"]))
    root = fake_imagenet(tmp_path / "imagenet")
    with pytest.raises(ArtifactError, match="incomplete copy"):  # the full config expects all 1281167 images
        data.main(load(PAPER, "data", ["scale=full", f"data.root={root}", f"io.out={tmp_path}/i.json"]))
