"""The shared structured-pruning core: ZIG partition (residual adds couple, concats do not),
compact subnetwork construction and its equivalence, DHSPG's projection cap."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from steps.nn import compression, zig
from steps.nn.demo_resnet import DemoResNet
from steps.nn.dhspg import DHSPG


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


@pytest.fixture(scope="module")
def demo():
    torch.manual_seed(0)
    model = DemoResNet((4, 8, 6))
    x = torch.randn(16, 1, 10, 10)
    return model, x, zig.partition(model, x[:2])


def test_demo_resnet_partition_couples_adds_and_splits_concat(demo):
    model, _, part = demo
    # stem+block1 (4, coupled by the add) + block1 conv1 (4) + block2 conv1 (8) + block2/shortcut (8,
    # coupled) + two concat branches (6 + 6); the classifier's outputs are fixed
    assert part.num_groups == 4 + 4 + 8 + 8 + 6 + 6
    assert part.fixed_channels == 10
    by_layer = {}
    for g in part.groups:
        for layer, _ in g.channels:
            by_layer.setdefault(layer, set()).add(g.id)
    assert by_layer["stem.0"] == by_layer["block1.3"]
    assert by_layer["block2.3"] == by_layer["shortcut2.0"]
    assert not by_layer["branch_a.0"] & by_layer["branch_b.0"]
    g = next(g for g in part.groups if ("stem.0", 0) in g.channels)
    assert ("stem.1.weight", 0, 0) in g.params and ("stem.1.bias", 0, 0) in g.params
    assert {s[0] for s in g.consumers} == {"block1.0.weight", "block2.0.weight", "shortcut2.0.weight"}
    # the concat shifts branch b's columns in the classifier by branch a's width
    gb = next(g for g in part.groups if ("branch_b.0", 0) in g.channels)
    assert gb.consumers == [("fc.weight", 1, 6)]
    assert zig.Partition.from_dict(part.to_dict()).to_dict() == part.to_dict()


@pytest.mark.parametrize("share", [0.3, 0.7])
def test_compact_equals_full_after_zeroing_random_groups(demo, share):
    model, x, part = demo
    full = DemoResNet((4, 8, 6))
    full.load_state_dict(model.state_dict())
    _randomise_bn(full)
    ids = random.Random(1).sample(range(part.num_groups), int(share * part.num_groups))
    zig.zero_groups(full, part, ids)
    assert zig.group_sparsity(full, part) == pytest.approx(len(ids) / part.num_groups)
    gi = zig.GroupIndex(full, part)
    assert gi.zero_groups().nonzero().flatten().tolist() == sorted(ids)
    compact = zig.construct_subnet(full, part)
    assert zig.max_abs_diff(full, compact, x) < 1e-5
    a_full = compression.account(full, x[:1])
    a_comp = compression.account(compact, x[:1])
    assert a_comp["params"]["total"] < a_full["params"]["total"]
    assert a_comp["flops"]["dense"] < a_full["flops"]["dense"]
    assert a_comp["params"]["total"] == a_comp["params"]["nonzero"] or share < 1


def test_emptied_branch_and_emptied_residual_family(demo):
    model, x, part = demo
    full = DemoResNet((4, 8, 6))
    full.load_state_dict(model.state_dict())
    _randomise_bn(full, 3)
    ids = [g.id for g in part.groups if any(layer in ("branch_a.0", "block2.3") for layer, _ in g.channels)]
    zig.zero_groups(full, part, ids)
    compact = zig.construct_subnet(full, part)
    assert isinstance(compact.branch_a[0], zig.EmptyOutputLayer)
    assert isinstance(compact.branch_a[3] if len(compact.branch_a) > 3 else compact.fc, nn.Module)
    assert zig.max_abs_diff(full, compact, x) < 1e-5
    assert compact.fc.in_features == 6


def test_nonzero_groups_are_not_removed_and_explicit_removal_changes_output(demo):
    model, x, part = demo
    compact = zig.construct_subnet(model, part)
    assert compression.count_params(compact)["total"] == compression.count_params(model)["total"]
    forced = zig.construct_subnet(model, part, removed=[0, 1, 2])
    assert compression.count_params(forced)["total"] < compression.count_params(model)["total"]


class _Odd(nn.Module):
    """Unknown op (a constant added) and a second model input path: the touched channels fix."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return self.c(self.b(self.a(x)) + 1.0)


def test_constant_add_fixes_channels_instead_of_breaking_zero_invariance():
    model = _Odd()
    part = zig.partition(model, torch.randn(2, 1, 6, 6))
    layers = {layer for g in part.groups for layer, _ in g.channels}
    assert layers == {"a"}  # b's channels pass through `+ 1` (f(0) ≠ 0): not prunable


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(self.conv(x))


def test_shared_module_is_rejected():
    with pytest.raises(zig.UnsupportedModel):
        zig.partition(_Twice(), torch.randn(1, 3, 4, 4))


def test_dhspg_reaches_exactly_the_target_and_projected_groups_stay_zero():
    torch.manual_seed(0)
    model = DemoResNet((4, 8, 6))
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    part = zig.partition(model, x[:2])
    opt = DHSPG(model, part, lr=0.1, target_sparsity=0.5, tolerance=0.1, lmbda=0.5, hat_lmbda_coeff=4,
                partition_step=5, hsp_start_step=10)
    for _ in range(80):
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    assert int(opt.penalized.sum()) == round(0.6 * part.num_groups)
    assert int(opt.pruned.sum()) == part.num_groups // 2  # the cap: never past the target
    assert not (opt.pruned & ~opt.penalized).any()
    zeros = zig.GroupIndex(model, part).zero_groups()
    assert torch.equal(zeros, opt.pruned)
    compact = zig.construct_subnet(model, part)
    assert zig.max_abs_diff(model, compact, x) < 1e-5
    state = opt.state_dict()
    again = DHSPG(model, part, lr=0.1)
    again.load_state_dict(state)
    assert torch.equal(again.pruned, opt.pruned) and again.t == opt.t


@pytest.mark.parametrize("arch", ["resnet50", "vgg16_bn"])
def test_tutorial_nets_partition_and_compact_equals_full(arch):
    """OTOv2's CIFAR nets (tutorials 03/04), tiny width: every ZIG is zero-invariant — zero half
    of them at random, and the compact network computes the same function and is smaller."""
    from steps.nn.resnet_cifar import VGG16BN, ResNet50

    torch.manual_seed(0)
    model = (ResNet50 if arch == "resnet50" else VGG16BN)(classes=10, width=1 / 16).eval()
    _randomise_bn(model)
    x = torch.randn(4, 3, 32, 32)
    part = zig.partition(model, x[:2])
    assert part.fixed_channels == 10  # only the logits
    if arch == "resnet50":  # the adds couple every block output with its stage's shortcut
        assert part.summary()["max_coupling"] >= 4
    ids = random.Random(1).sample(range(part.num_groups), part.num_groups // 2)
    zig.zero_groups(model, part, ids)
    compact = zig.construct_subnet(model, part)
    assert zig.max_abs_diff(model, compact, x) < 1e-4
    assert compression.count_params(compact)["total"] < 0.75 * compression.count_params(model)["total"]


def test_tutorial_nets_have_the_tutorials_parameter_counts():
    """Full width, built on the meta device (no memory, no init time): tutorial 03 prints
    23 520 842 parameters for ResNet50, tutorial 04 15 253 578 for VGG16-BN."""
    from steps.nn.resnet_cifar import VGG16BN, ResNet50

    with torch.device("meta"):
        assert sum(p.numel() for p in ResNet50(10).parameters()) == 23_520_842
        assert sum(p.numel() for p in VGG16BN(10).parameters()) == 15_253_578


@pytest.mark.parametrize("stop", [False, True])
def test_dhspg_stop_at_target_drops_the_penalty_once_reached(demo, stop):
    """The official dhspg.py penalises G_p only while the target is not reached (full scale)."""
    model, x, part = demo
    model = DemoResNet((4, 8, 6))
    model.load_state_dict(demo[0].state_dict())
    opt = DHSPG(model, part, lr=0.01, momentum=0.0, target_sparsity=0.25, lmbda=0.1,
                partition_step=0, hsp_start_step=10**6, stop_at_target=stop)
    opt.pruned[: opt.max_pruned] = True
    model(x).sum().backward()
    opt.step()
    live = opt.penalized & ~opt.pruned
    assert live.any() and bool((opt.last_lambda[live] > 0).any()) is not stop


def test_group_dot_sums_exactly_what_a_masked_sum_gives(demo):
    """GroupIndex.dot indexes the group positions once; on a partition that leaves some channels
    of a parameter out of every group (every third group dropped) it equals the per-call masked
    sum bit for bit."""
    model, _, part = demo
    kept = [g for g in part.groups if g.id % 3]
    sub = zig.Partition([zig.Group(i, g.channels, g.params, g.consumers) for i, g in enumerate(kept)], part.layers, 0)
    gi = zig.GroupIndex(model, sub)
    assert any(pos is not None for pos, _ in gi._sel)
    ref = torch.zeros(sub.num_groups, dtype=torch.float64)
    for _, p, dim, gids in gi.entries:
        s = gi._reduce(p.detach() * p.detach(), dim).double()
        ref.index_add_(0, gids[gids >= 0], s[gids >= 0])
    assert torch.equal(gi.dot(), ref)
