"""fast_sparse_convnets: the sparse kernels against dense products, the packed network against
torch, gradual magnitude pruning, the claim-3 matching and the step machinery (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steps.core.cli import load
from steps.core.errors import ArtifactError, ConfigError
from steps.fast_sparse_convnets import common, kernels
from steps.fast_sparse_convnets.bench_kernels import summarise
from steps.fast_sparse_convnets.frontier import matched
from steps.fast_sparse_convnets.model import (
    MobileNetV1,
    apply_masks,
    cubic_sparsity,
    export,
    layer_sparsity,
    magnitude_mask,
)

PAPER = "fast_sparse_convnets"


def sparse_matrix(rng, cout, cin, s, block=1):
    w = rng.standard_normal((cout, cin)).astype(np.float32)
    if block == 1:
        return w * (rng.random((cout, cin)) >= s)
    keep = np.repeat(rng.random((-(-cout // 4), cin)) >= s, 4, axis=0)[:cout]
    return w * keep


@pytest.mark.parametrize("kind", kernels.Conv1x1.KINDS)
@pytest.mark.parametrize("cout, cin, hw, strip", [(8, 5, 7, 4), (13, 17, 50, 16), (36, 24, 196, 128)])
def test_every_kernel_equals_the_dense_product(kind, cout, cin, hw, strip):
    rng = np.random.default_rng(cout * hw)
    w = sparse_matrix(rng, cout, cin, 0.8, block=4 if kind == "bsr4" else 1)
    b = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal((cin, hw)).astype(np.float32) * 3
    for lo, hi in ((-1e30, 1e30), (0.0, 6.0)):  # plain, and with the fused ReLU6
        ref = np.clip(w.astype(np.float64) @ x + b[:, None], lo, hi)
        y = kernels.Conv1x1(w, b, kind, strip, lo, hi)(x)
        assert y.shape == (cout, hw)
        np.testing.assert_allclose(y, ref, atol=1e-4, rtol=0)


def one_weight_per_pass(rowptr, cols, vals, bias, x, strip, lo, hi):
    """The CSR loop nest taking one weight per pass over the strip (the kernels before unrolling),
    compiled with the kernels' flags."""
    from numba import njit

    @njit(**kernels._JIT)
    def run(rowptr, cols, vals, bias, x, y, strip, lo, hi):
        hw = x.shape[1]
        xf, yf = x.ravel(), y.ravel()
        acc = np.empty(strip, np.float32)
        for s0 in range(0, hw, strip):
            n = min(strip, hw - s0)
            for o in range(rowptr.shape[0] - 1):
                acc[:n] = bias[o]
                for j in range(rowptr[o], rowptr[o + 1]):
                    w, xs = vals[j], xf[cols[j] * hw + s0:cols[j] * hw + s0 + n]
                    for q in range(n):
                        acc[q] += w * xs[q]
                for q in range(n):
                    yf[o * hw + s0 + q] = min(max(acc[q], lo), hi)

    y = np.empty((len(rowptr) - 1, x.shape[1]), np.float32)
    run(rowptr, cols, vals, bias, x, y, strip, lo, hi)
    return y


@pytest.mark.parametrize("strip", [128, 7])
def test_unrolled_csr_adds_in_the_same_order_bit_for_bit(strip):
    rng = np.random.default_rng(strip)
    w = sparse_matrix(rng, 36, 50, 0.6)
    x = rng.standard_normal((50, 130)).astype(np.float32)
    b = rng.standard_normal(36).astype(np.float32)
    ref = one_weight_per_pass(*kernels.to_csr(w), b, x, strip, -2.0, 2.0)
    assert np.array_equal(kernels.Conv1x1(w, b, "csr", strip, -2.0, 2.0)(x), ref)


def test_packing_round_trips_and_blocks_span_four_rows():
    rng = np.random.default_rng(0)
    w = sparse_matrix(rng, 10, 9, 0.7)
    rowptr, cols, vals = kernels.to_csr(w)
    dense = np.zeros_like(w)
    for o in range(10):
        dense[o, cols[rowptr[o]:rowptr[o + 1]]] = vals[rowptr[o]:rowptr[o + 1]]
    np.testing.assert_array_equal(dense, w)
    assert len(vals) == np.count_nonzero(w)
    wb = sparse_matrix(rng, 10, 9, 0.7, block=4)
    bptr, bcols, bvals = kernels.to_bsr4(wb)
    assert bvals.shape[1] == 4 and len(bptr) == 3 + 1  # 10 rows padded to 12 = 3 block rows
    padded = np.zeros((12, 9), np.float32)
    for r in range(3):
        for j in range(bptr[r], bptr[r + 1]):
            padded[4 * r:4 * r + 4, bcols[j]] = bvals[j]
    np.testing.assert_array_equal(padded[:10], wb)


def test_cubic_schedule_endpoints_and_shape():
    assert cubic_sparsity(0, 0.0, 0.9, 10, 50) == 0.0
    assert cubic_sparsity(50, 0.0, 0.9, 10, 50) == pytest.approx(0.9)
    assert cubic_sparsity(99, 0.0, 0.9, 10, 50) == pytest.approx(0.9)
    s = [cubic_sparsity(t, 0.0, 0.9, 10, 50) for t in range(10, 51)]
    assert all(a <= b for a, b in zip(s, s[1:], strict=False))
    assert s[20] > 0.9 * 0.5  # front-loaded: most pruning happens early (Zhu & Gupta)


@pytest.mark.parametrize("block", [1, 4])
def test_magnitude_mask_hits_the_target_and_keeps_the_largest(block):
    w = torch.randn(16, 24, 1, 1, generator=torch.Generator().manual_seed(block))
    m = magnitude_mask(w, 0.75, block)
    assert float((m == 0).float().mean()) == pytest.approx(0.75)
    m2 = m.reshape(16, 24)
    if block == 4:  # every 1×4 group of output channels is kept or dropped whole
        g = m2.reshape(4, 4, 24)
        assert torch.equal(g.amin(1), g.amax(1))
        score = w.reshape(4, 4, 24).pow(2).sum(1)
        kept, dropped = score[g[:, 0] == 1], score[g[:, 0] == 0]
    else:
        a = w.reshape(16, 24).abs()
        kept, dropped = a[m2 == 1], a[m2 == 0]
    assert kept.min() >= dropped.max()
    with pytest.raises(ValueError, match="multiple of block"):
        magnitude_mask(torch.randn(6, 4), 0.5, 4)


def random_net(width=1.0, seed=0, sparsity=0.0, block=1):
    torch.manual_seed(seed)
    net = MobileNetV1(width, 8, [(16, 1), (16, 2), (24, 1)], in_ch=1, classes=10, stem_stride=2)
    with torch.no_grad():  # non-trivial BN statistics, so that folding is really tested
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    if sparsity:
        apply_masks(net, [magnitude_mask(c.weight, sparsity, block) for c in net.pointwise()])
    return net.eval()


@pytest.mark.parametrize("kind, block", [("csr", 1), ("bsr4", 4), ("dense_loop", 1), ("blas", 4)])
def test_packed_network_equals_torch(kind, block):
    from steps.fast_sparse_convnets.engine import Engine

    net = random_net(sparsity=0.8, block=block, seed=block)
    assert all(abs(s - 0.8) < 0.02 for s in layer_sparsity(net))  # 32 blocks in the smallest layer
    exported = export(net)
    assert all(np.mean(b["pw_w"] == 0) == pytest.approx(0.8, abs=0.02) for b in exported["blocks"])  # folding keeps zeros
    x = torch.randn(3, 1, 15, 15, generator=torch.Generator().manual_seed(1))  # odd size: padding and strides
    with torch.no_grad():
        ref = net(x).numpy()
    eng = Engine(exported, kind, 16, (1, 15, 15))
    for i in range(3):
        np.testing.assert_allclose(eng(x[i].numpy()), ref[i], atol=1e-4)


def test_claim3_matching_counts_only_latency_matched_wins():
    def m(acc, ms, block=0, width=1.0, s=0.0):
        return {"accuracy": acc, "latency_ms": ms, "block": block, "width": width, "sparsity": s}

    models = {"dense_w0_5": m(0.80, 1.0), "dense_w1": m(0.85, 2.0),
              "sparse_w2_s0_9_b1": m(0.84, 1.05, 1, 2.0, 0.9),   # 5 % slower than w0.5, more accurate: a win
              "sparse_w2_s0_8_b1": m(0.90, 2.3, 1, 2.0, 0.8)}    # 15 % slower than w1: not matched
    arms = [{"key": k, "block": v["block"]} for k, v in models.items()]
    got = matched(models, arms, [0.5, 1.0], 0.10)
    assert got["wins"] == 1 and got["points"]["w0_5"]["win"] == 1 and got["points"]["w1"]["win"] == 0
    assert got["points"]["w1"]["candidates"] == 1  # only the 1.05 ms model is within 1.1 × 2.0 ms


def test_kernel_summary_monotonicity_and_block_share():
    def row(loop, csr, b4):
        return {"speedup_csr_vs_loop": loop, "speedup_bsr4_vs_loop": loop * 2, "speedup_csr_vs_blas": 0.5,
                "speedup_bsr4_vs_blas": 0.8, "block_gain": csr / b4}
    shapes = {"a": {"s0_7": row(2.0, 3, 2), "s0_8": row(3.0, 2, 1), "s0_9": row(4.0, 1, 2)}}
    s = summarise(shapes, [0.7, 0.8, 0.9])
    assert s["monotone_csr"] == 1 and s["min_speedup_csr_vs_loop_top"] == 4.0
    assert s["block_faster_share"] == pytest.approx(2 / 3)
    shapes["a"]["s0_9"]["speedup_csr_vs_loop"] = 2.5
    assert summarise(shapes, [0.7, 0.8, 0.9])["monotone_csr"] == 0


def test_minibatches_are_a_function_of_seed_and_step():
    a = common.batch_indices(0, 100, 32, 5)
    assert torch.equal(a, common.batch_indices(0, 100, 32, 5))
    epoch = torch.cat([common.batch_indices(0, 100, 32, k) for k in range(4)])  # 4 steps = 1 epoch
    assert sorted(epoch.tolist()) == list(range(100))
    assert not torch.equal(common.batch_indices(0, 100, 32, 4), common.batch_indices(0, 100, 32, 0))


def test_dense_then_pruned_training_is_deterministic_and_on_target(tmp_path):
    from steps.fast_sparse_convnets import prune, train_dense

    small = ["threads=1", "data.n_train=200", "train.epochs=2", "prune.begin_epoch=1", "prune.end_epoch=2", "train.batch=50"]
    outs = []
    for k in range(2):
        d = tmp_path / f"dense{k}.pt"
        train_dense.main(load(PAPER, "train_dense", ["scale=smoke", *small, "io.width=0.5", f"io.out={d}"]))
        s = tmp_path / f"sparse{k}.pt"
        meta = prune.main(load(PAPER, "prune", ["scale=smoke", *small, f"io.dense={d}", "io.sparsity=0.5",
                                                "io.block=4", f"io.out={s}"]))
        assert all(abs(a - 0.5) <= 0.01 for a in meta["layer_sparsity"])
        outs.append(torch.load(s, weights_only=False)["state"]["model"])
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])
    assert not list(tmp_path.glob("*.resume.pt"))


def test_bad_input_gives_one_clear_error(tmp_path):
    from steps.fast_sparse_convnets import prune

    with pytest.raises(ConfigError, match="sparsity"):
        prune.main(load(PAPER, "prune", ["scale=smoke", f"io.dense={tmp_path}/d.pt", "io.sparsity=1.5",
                                         "io.block=1", f"io.out={tmp_path}/s.pt"]))
    with pytest.raises(ArtifactError, match="missing"):
        prune.main(load(PAPER, "prune", ["scale=smoke", f"io.dense={tmp_path}/d.pt", "io.sparsity=0.5",
                                         "io.block=1", f"io.out={tmp_path}/s.pt"]))
    with pytest.raises(ConfigError):
        load(PAPER, "prune", ["scale=smoke", "prune.no_such_key=1"])
    with pytest.raises(ConfigError, match="data.source"):
        common.load_data(load(PAPER, "train_dense", ["scale=smoke", "data.source=cifar"]), "train")


def test_image_folder_loader_on_a_fixture(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("n01", "n02"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{i}.JPEG")
    cfg = load(PAPER, "train_dense", ["scale=full", f"data.root={tmp_path}", "data.size=16"])
    train = common.load_data(cfg, "train")
    x, y = train.get(torch.tensor([0, 4]), step=3)
    assert x.shape == (2, 3, 16, 16) and y.tolist() == [0, 1] and len(train) == 6
    assert torch.equal(x, train.get(torch.tensor([0, 4]), step=3)[0])  # deterministic per (seed, step)
    test = common.load_data(cfg, "test")
    assert test.get(torch.arange(6))[0].shape == (6, 3, 16, 16)
    # training streams: the in-process path and 2 DataLoader workers visit the same images in order
    one = common.minibatches(load(PAPER, "train_dense", ["scale=full", f"data.root={tmp_path}", "data.size=16", "threads=1"]),
                             train, 0, 4, start_step=1)
    two = common.minibatches(load(PAPER, "train_dense", ["scale=full", f"data.root={tmp_path}", "data.size=16", "threads=3"]),
                             train, 0, 4, start_step=1)
    for _ in range(3):  # steps 1, 2, 3: the second epoch begins at step 2 (2 steps of 4 and 2 images)
        (xa, ya), (xb, yb) = next(one), next(two)
        assert torch.equal(ya, yb) and xa.shape == xb.shape and xa.shape[1:] == (3, 16, 16)
    two.close()
    # the full-scale network on it: a tiny randomly initialised MobileNet v1 forward pass
    net = MobileNetV1(0.125, 32, [(64, 1), (128, 2)], in_ch=3, classes=2)
    assert net(x).shape == (2, 2)
    with pytest.raises(ArtifactError, match="missing"):
        common.load_data(load(PAPER, "train_dense", ["scale=full", f"data.root={tmp_path}/nope"]), "train")
