"""asd's mechanism: the fully convolutional UNet at any size, tiled sampling (FSTD's random
offsets, resets, clamped origins and noise reference), the scenes and their composition
metrics, the seam score, and ARAD's bucket plan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from steps.asd import scenes
from steps.asd.train_gen import bucket_plan
from steps.asd.upscale import seam_ratio
from steps.core.errors import ConfigError
from steps.nn import tiled_flow
from steps.nn.call_count import CallCounter
from steps.nn.fully_conv_unet import FullyConvUNet

SC = OmegaConf.create({"background": 0.0, "band_frac": 0.15, "band_level": 0.3, "margin": 1})
EV = OmegaConf.create({"threshold": 0.35, "min_pixels": 5})


@pytest.mark.parametrize("hw", [(16, 16), (16, 32), (32, 16), (24, 40)])
def test_unet_runs_at_any_size(hw):
    torch.manual_seed(0)
    net = FullyConvUNet(c1=8, c2=16, emb=16)
    torch.nn.init.normal_(net.out[-1].weight)  # the zero-initialised head would hide shape bugs
    x = torch.randn(3, 1, *hw)
    out = net(x, torch.rand(3), torch.eye(10)[:3])
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_unet_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even"):
        FullyConvUNet(c1=8, c2=16, emb=16)(torch.randn(1, 1, 15, 16), torch.rand(1), torch.zeros(1, 10))


def test_grid_origins_are_clamped_and_count_is_fixed():
    assert tiled_flow.grid_origins(64, 16) == [0, 16, 32, 48]
    assert tiled_flow.grid_origins(64, 16, offset=5) == [5, 21, 37, 48]  # the last tile clamped inside
    assert tiled_flow.overlap_origins(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48]
    assert tiled_flow.overlap_origins(40, 16, 16) == [0, 16, 24]


def pointwise(x, t, c):
    """A velocity with no spatial context: every tiling must reproduce the whole-canvas result."""
    return -x + (c if c.dim() == 4 else 0.0) + t.view(-1, 1, 1, 1)


@pytest.mark.parametrize("mode", ["non_overlap", "overlap", "fstd"])
def test_tiling_is_exact_for_a_pointwise_velocity(mode):
    z = torch.randn(2, 1, 32, 64)
    c = torch.randn(2, 1, 32, 64)  # a spatial condition is cropped with each tile
    ref, _ = tiled_flow.sample(pointwise, z, c, 8, "whole", 16)
    g = torch.Generator().manual_seed(0)
    x, info = tiled_flow.sample(pointwise, z, c, 8, mode, 16, stride=8, max_offset=8, generator=g)
    # FSTD's uncovered strip takes the previous step's velocity, so it is exact only where covered
    if mode != "fstd":
        torch.testing.assert_close(x, ref)
    else:
        assert info["calls"] == 8 * 8


def test_fstd_offsets_change_per_step_and_reset_every_4():
    g = torch.Generator().manual_seed(3)
    _, info = tiled_flow.sample(pointwise, torch.randn(1, 1, 32, 64), torch.zeros(1, 10), 12, "fstd", 16,
                                max_offset=8, reset_every=4, generator=g)
    offs = info["offsets"]
    assert [offs[i] for i in (0, 4, 8)] == [(0, 0)] * 3
    assert all(0 <= o < 8 for off in offs for o in off)
    assert len({offs[i] for i in (1, 2, 3, 5, 6, 7, 9, 10, 11)}) > 1  # shifted per step, not once


def test_fstd_calls_equal_non_overlap_and_overlap_costs_more():
    z, c = torch.randn(1, 1, 32, 64), torch.zeros(1, 10)
    calls = {m: tiled_flow.sample(pointwise, z, c, 8, m, 16, stride=8, max_offset=8,
                                  generator=torch.Generator().manual_seed(0))[1]["calls"]
             for m in ("non_overlap", "overlap", "fstd")}
    assert calls["fstd"] == calls["non_overlap"] == 8 * 8
    assert calls["overlap"] == 3 * 7 * 8


class Pointwise(torch.nn.Module):
    """`pointwise` as a module, so that a forward hook can count its calls."""

    def forward(self, x, t, c):
        return pointwise(x, t, c)


def test_call_counter_counts_the_model_evaluations_that_ran():
    """The counted calls (rows per canvas) are what the tile grid predicts: FSTD evaluates as many
    tiles as the fixed grid whatever its offsets, which is why asd declares them accounting."""
    net, z, c = Pointwise(), torch.randn(3, 1, 32, 64), torch.zeros(3, 10)
    rows = {}
    for m in ("non_overlap", "overlap", "fstd", "whole"):
        with CallCounter(net) as n:
            _, info = tiled_flow.sample(net, z, c, 8, m, 16, stride=8, max_offset=8, generator=torch.Generator().manual_seed(0))
        assert n.rows == info["calls"] * len(z) and n.forwards == info["calls"]
        rows[m] = n.rows / len(z)
    assert rows == {"non_overlap": 8 * 8, "fstd": 8 * 8, "overlap": 3 * 7 * 8, "whole": 8}
    net(z, torch.zeros(3), c)  # outside the context: not counted
    assert n.forwards == info["calls"]
    with CallCounter(net) as n2:
        net(x=z, t=torch.zeros(3), c=c)  # keyword arguments: rows from the first tensor
    assert (n2.forwards, n2.rows) == (1, 3)


def test_upscale_declares_the_counts_accounting():
    from steps.asd.upscale import ACCOUNTING
    from steps.core.metrics import is_accounting

    record = {"accounting": ACCOUNTING}
    assert is_accounting("fstd", record, "fstd.fstd.calls") and is_accounting("fstd", record, "fstd.non_overlap.calls")
    assert not is_accounting("fstd", record, "fstd.fstd.wall_s") and not is_accounting("fstd", record, "fstd.fstd.seam")


def test_uncovered_pixels_take_the_reference():
    x = torch.zeros(1, 1, 16, 32)
    ones = lambda x, t, c: torch.ones_like(x)  # noqa: E731
    ref = torch.full_like(x, 7.0)
    vel, calls = tiled_flow.tiled_velocity(ones, x, torch.zeros(1), None, 16, [0], [5], None, ref)
    assert calls == 1
    assert (vel[..., :5] == 7).all() and (vel[..., 5:21] == 1).all() and (vel[..., 21:] == 7).all()
    with pytest.raises(ValueError, match="uncovered"):
        tiled_flow.tiled_velocity(ones, x, torch.zeros(1), None, 16, [0], [5])


def test_scenes_keep_the_sprite_inside_at_one_scale():
    rng = np.random.default_rng(0)
    d01 = rng.random((20, 8, 8)).astype(np.float32)
    for h, w in [(16, 16), (16, 32), (32, 16)]:
        x, y = scenes.make_bucket(d01, np.arange(20) % 10, h, w, 50, SC, rng)
        assert x.shape == (50, 1, h, w) and x.min() >= -1 and x.max() <= 1
        band = scenes.band_rows(h, 0.15)
        bright = (x[:, 0] + 1) / 2 > 0.31
        rows, cols = np.nonzero(bright.any(0))
        assert rows.max() < h - band and rows.min() >= 1 and cols.min() >= 1 and cols.max() <= w - 2
        assert (((x[:, 0, h - band:] + 1) / 2) >= 0.3 - 1e-6).all()  # the ground band


def test_composition_counts_duplicates_and_crops():
    spr = np.zeros((12, 12), np.float32)
    spr[2:10, 4:8] = 1.0
    one = scenes.render(spr, 16, 32, 1, 3, SC)
    two = np.maximum(one, scenes.render(spr, 16, 32, 1, 18, SC))
    cut = scenes.render(spr, 16, 32, 1, 3, SC)[:, 8:]  # the object shifted onto the left border
    cut = np.pad(cut, ((0, 0), (0, 8)))
    imgs = np.stack([one, two, cut])[:, None] * 2 - 1
    m = scenes.composition(imgs, SC, EV)
    assert m["count"].tolist() == [1, 2, 1]
    assert m["cropped"].tolist() == [False, False, True]
    assert m["crops"].shape == (3, 64)


def test_seam_ratio_sees_tile_borders():
    rng = np.random.default_rng(0)
    smooth = rng.normal(size=(4, 1, 32, 64))
    seamy = smooth.copy()
    seamy[..., :, 16:32] += 3.0  # a step at the tile borders x = 16 and x = 32
    assert seam_ratio(smooth, 16) == pytest.approx(1.0, abs=0.15)
    assert seam_ratio(seamy, 16) > 1.5


def test_bucket_plan():
    cfg = OmegaConf.create({"data": {"square": [16, 16], "buckets": [[16, 16], [16, 32], [32, 16]]}})
    assert bucket_plan("square", cfg) == ["b16x16"]
    assert bucket_plan("arad", cfg) == ["b16x16", "b16x32", "b32x16"]
    with pytest.raises(ConfigError, match="unknown arm"):
        bucket_plan("wide", cfg)


def test_dvc_stage_takes_instaflow_outputs_as_dependencies():
    from steps.core import dvc_sync

    outs = ["data/asd/buckets.npz", "results/asd/composition.json", "models/instaflow/fid_clf.pt", "data/instaflow/digits.npz"]
    st = dvc_sync.paper_stage("asd", "mini", outs, ["workflow/rules/asd.smk"], figures=True, others=["instaflow", "asd"])
    assert st["outs"] == ["data/asd", "results/asd"]
    assert {"models/instaflow", "data/instaflow", "steps/instaflow"} <= set(st["deps"])
    with pytest.raises(ConfigError, match="models/instaflow/fid_clf.pt"):
        dvc_sync.paper_stage("asd", "mini", outs, [], figures=False)  # without the registry: still refused
