"""GPUSQ-ViT's mechanism: exact 2:4 masks along the input dimension, fake quantization with a
straight-through estimator, masks that survive fine-tuning and QAT, the distillation loss, the
size and BOPs accounting, determinism, and the GPU benchmark's CPU path."""

from __future__ import annotations

import json

import pytest
import torch

from steps.core.config import compose
from steps.gpusq_vit import bench_semi_structured as bench
from steps.gpusq_vit.common import (
    calibrate,
    kd_loss,
    layer_importance,
    load_model,
    prune_2to4,
    save_model,
    set_quant,
    train,
)
from steps.gpusq_vit.evaluate import bops, model_bits
from steps.gpusq_vit.vit import ViT
from steps.nn.fake_quant import ActObserver, QLinear, qrange, quant_weight
from steps.nn.nm_sparsity import is_nm_sparse, magnitude_mask, nm_mask
from steps.nn.optim import AdamW


def tiny(depth: int = 2) -> ViT:
    torch.manual_seed(0)
    return ViT(image=8, patch=4, dim=16, depth=depth, heads=2, mlp=32, classes=10)


def test_2to4_mask_is_exact_along_the_input_dimension():
    w = torch.randn(12, 32)
    mask = nm_mask(w, 2, 4)
    groups = mask.reshape(12, 8, 4)
    assert (groups.sum(-1) == 2).all()  # exactly 2 kept in every group of 4 consecutive inputs
    a = w.abs().reshape(12, 8, 4)
    kept = a.masked_fill(groups == 0, float("inf")).amin(-1)
    dropped = a.masked_fill(groups == 1, 0.0).amax(-1)
    assert (kept >= dropped).all()  # the 2 largest magnitudes are the ones kept
    assert is_nm_sparse(w * mask) and not is_nm_sparse(w)
    # groups run along rows (inputs), not columns: the transpose of a 2:4 matrix is not 2:4
    assert not is_nm_sparse((w * mask).T.contiguous()[:, :12])


def test_2to4_mask_ties_and_bad_shapes():
    assert nm_mask(torch.ones(1, 8)).tolist() == [[1, 1, 0, 0, 1, 1, 0, 0]]
    with pytest.raises(ValueError, match="multiple of M"):
        nm_mask(torch.randn(4, 6))
    with pytest.raises(ValueError, match="2-d"):
        nm_mask(torch.randn(4, 4, 4))


def test_unstructured_mask_density():
    w = torch.randn(16, 16)
    m = magnitude_mask(w, 0.5)
    assert int(m.sum()) == 128 and float(w.abs()[m.bool()].min()) >= float(w.abs()[~m.bool()].max())


def test_fake_quant_grid_and_straight_through_gradient():
    w = torch.randn(8, 16, requires_grad=True)
    q = quant_weight(w, 4)
    scale = w.detach().abs().amax(1, keepdim=True) / 7
    levels = (q.detach() / scale).round()
    assert torch.allclose(q.detach(), levels * scale, atol=1e-6) and levels.min() >= -8 and levels.max() <= 7
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # STE: identity inside the range
    assert qrange(8) == (-128, 127)
    w8 = quant_weight(w.detach(), 8)
    assert float((w8 - w.detach()).abs().max()) <= float(w.detach().abs().max()) / 127 / 2 + 1e-6


def test_activation_observer_calibrates_then_freezes():
    obs = ActObserver(8)
    obs.eval()
    obs.calibrating = True
    obs(torch.tensor([1.0, -3.0]))
    obs(torch.tensor([2.0]))
    obs.calibrating = False
    assert float(obs.amax) == 3.0
    obs(torch.tensor([10.0]))  # eval: the range is fixed, the input is clipped
    assert float(obs.amax) == 3.0 and float(obs(torch.tensor([10.0]))) == pytest.approx(3.0, rel=1e-2)


def test_mask_survives_fine_tuning_and_qat():
    """Pitfall: fake-quant without a fixed mask densifies the weights."""
    layer = QLinear(8, 4)
    layer.set_mask(nm_mask(layer.weight, 2, 4))
    layer.set_quant(4, 4)
    opt = AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        loss = layer(torch.randn(16, 8)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        assert (layer.weight.grad[layer.mask == 0] == 0).all()
        opt.step()
        layer.apply_mask()
    assert is_nm_sparse(layer.weight) and is_nm_sparse(layer.effective_weight())


def test_every_linear_layer_is_compressible():
    net = tiny()
    assert not [n for n, m in net.named_modules() if isinstance(m, torch.nn.Linear) and not isinstance(m, QLinear)]
    assert len(net.qlinears()) == 2 + 4 * 2  # patch embedding, head, 4 GEMMs per block
    logits, feats = net(torch.randn(3, 1, 8, 8), features=True)
    assert logits.shape == (3, 10) and len(feats) == 2 and feats[0].shape == (3, 5, 16)


def test_distillation_loss_and_layer_importance():
    net = tiny()
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    cfg = compose("gpusq_vit", "smoke")
    logits, feats = net(x, features=True)
    _, parts = kd_loss(logits, feats, logits, feats, y, cfg.kd, [1.0, 1.0])
    assert parts["kl"] == pytest.approx(0, abs=1e-6) and parts["feat"] == 0
    imp = layer_importance(net, x, y, prune_2to4)
    assert len(imp) == 2 and sum(imp) == pytest.approx(2.0) and min(imp) > 0
    assert all(not is_nm_sparse(m.weight) for m in net.qlinears().values())  # restored after probing


def test_size_and_bops_accounting():
    net = tiny(depth=1)
    for m in net.qlinears().values():
        m.set_mask(nm_mask(m.weight, 2, 4))
    set_quant(net, 4, 4, 0.1)
    meta = {"quant": {"w_bits": 4, "a_bits": 4}, "pattern": "2:4"}
    bits = model_bits(net, meta)
    gemm_numel = sum(m.weight.numel() for m in net.qlinears().values())
    assert bits["gemm_weights"] == gemm_numel // 4 * (2 * 4 + 3)  # 2 INT4 values + 3 index bits per group
    assert bits["scales"] == sum(m.out_features * 32 + 32 for m in net.qlinears().values())
    ops = bops(net, torch.zeros(1, 1, 8, 8), meta)
    assert ops["flops_sparse"] == pytest.approx(ops["flops_dense"] / 2)
    assert ops["bops"] == pytest.approx(ops["flops_sparse"] * 16 / 1024)
    dense = model_bits(tiny(depth=1), {})
    assert dense["total"] == 32 * sum(p.numel() for p in tiny(depth=1).parameters())


def test_quantized_checkpoint_roundtrip(tmp_path):
    cfg = compose("gpusq_vit", "smoke", ["model.image=8", "model.dim=16", "model.heads=2", "model.mlp=32"])
    torch.manual_seed(0)
    net = ViT(8, 4, 16, 2, 2, 32)
    for m in net.qlinears().values():
        m.set_mask(nm_mask(m.weight, 2, 4))
    set_quant(net, 8, 8, 0.1)
    x = torch.randn(20, 1, 8, 8)
    calibrate(net, x)
    save_model(tmp_path / "m.pt", cfg, net, {"quant": {"w_bits": 8, "a_bits": 8}, "pattern": "2:4"})
    back, meta = load_model(tmp_path / "m.pt", cfg.model)
    assert meta["pattern"] == "2:4" and torch.equal(back(x), net.eval()(x))


def _train_once(tmp_path, name):
    cfg = compose("gpusq_vit", "smoke", ["model.image=8", "model.dim=16", "model.heads=2", "model.mlp=32"])
    torch.manual_seed(0)
    net = ViT(8, 4, 16, 2, 2, 32)
    g = torch.Generator().manual_seed(1)
    data = {"x_train": torch.randn(64, 1, 8, 8, generator=g), "y_train": torch.randint(0, 10, (64,), generator=g)}
    teacher = ViT(8, 4, 16, 2, 2, 32)
    train(cfg, net, data, cfg.qat, tmp_path / name, 0, "t", teacher, [1.0, 1.0])
    return net.state_dict()


def test_training_is_deterministic(tmp_path):
    a, b = _train_once(tmp_path, "a.pt"), _train_once(tmp_path, "b.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gpu_benchmark_cpu_path(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    values, where = bench.measure({"x": [64, 64, 64]})
    assert values == {"measured": 0.0} and where == bench.NOT_MEASURED
    bench.standalone(["--out", str(tmp_path)])
    rec = json.loads((tmp_path / "gpu_speedup.json").read_text())
    assert rec["device"] == "not measured (no CUDA GPU)" and rec["values"]["measured"] == 0.0
    assert is_nm_sparse(bench.two_four(torch.randn(8, 16)))
