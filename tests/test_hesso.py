"""HESSO's mechanism: the linear decay, the normalised hybrid saliency, the group selection,
CRIC's exact restore, and the families it reads off the shared ZIG partition."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steps.hesso import cric, saliency
from steps.hesso.groups import (
    Family,
    families_from_partition,
    group_norms,
    group_vectors,
    scale_groups,
)
from steps.hesso.hesso import Hesso, decay_factor, period_quotas, select_lowest, target_count
from steps.hesso.sgd import SGD


def toy():
    """conv(2→6) → BN → ReLU → conv(6→4) → BN → GAP → linear: two families (6 and 4 channels)."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.Conv2d(6, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        for bn in (m[1], m[4]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)

    def fam(name, conv, bn, n):
        idx = torch.arange(n)
        return Family(name, n, [(f"{name}.w", conv.weight, 0, idx), (f"{name}.g", bn.weight, 0, idx),
                                (f"{name}.b", bn.bias, 0, idx)])
    return m, [fam("a", m[0], m[1], 6), fam("b", m[3], m[4], 4)]


def test_linear_decay_reaches_exactly_zero_in_k_steps():
    """K = 4: the factors are 3/4, 2/3, 1/2, 0, so the group's norm is 3/4, 1/2, 1/4, 0 of its start."""
    assert [decay_factor(4, t) for t in range(4)] == [0.75, 2 / 3, 0.5, 0.0]
    _, fams = toy()
    pruner = Hesso(fams, target=0.3, start=0, pruning_steps=4, periods=1, weights={"magnitude": 1.0})
    before = group_norms(fams).clone()
    seen = []
    for step in range(4):
        pruner.before_update(step)  # no optimizer step in between: the decay alone
        active = list(pruner.active) or seen[-1][0]
        pruner.after_update(step)
        seen.append((active, group_norms(fams)[active] / before[active]))
    active = seen[0][0]
    assert len(active) == target_count(fams, 0.3) == 3
    for step, expect in enumerate([0.75, 0.5, 0.25, 0.0]):
        assert torch.allclose(seen[step][1], torch.full((3,), expect, dtype=seen[step][1].dtype), atol=1e-6)
    assert bool((group_norms(fams)[active] == 0).all()) and pruner.pruned == sorted(active)
    others = [g for g in range(10) if g not in active]
    assert torch.equal(group_norms(fams)[others], before[others])


def test_periods_prune_progressively_and_keep_pruned_groups_zero():
    m, fams = toy()
    opt = SGD(m.parameters(), lr=0.05)
    pruner = Hesso(fams, target=0.5, start=2, pruning_steps=6, periods=3)
    assert period_quotas(target_count(fams, 0.5), 3) == [1, 1, 3]
    x, y = torch.randn(8, 2, 5, 5), torch.randint(0, 3, (8,))
    counts = []
    for step in range(12):
        loss = nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        pruner.before_update(step)
        opt.step()
        pruner.after_update(step)
        counts.append(len(pruner.pruned))
        assert bool((group_norms(fams)[pruner.pruned] == 0).all())  # committed groups stay at zero
    assert counts == [0, 0, 0, 1, 1, 2, 2, 5, 5, 5, 5, 5]
    assert int((group_norms(fams) == 0).sum()) == 5


def test_saliency_criteria_are_normalised_before_mixing():
    """Scaling every gradient by 1000 multiplies the Taylor scores by 10³ and 10⁶; normalised over
    all groups, the hybrid saliency does not change (unnormalised, Taylor would dominate)."""
    m, fams = toy()
    nn.functional.cross_entropy(m(torch.randn(8, 2, 5, 5)), torch.randint(0, 3, (8,))).backward()
    w = {c: 0.2 for c in saliency.CRITERIA}
    s1 = saliency.hybrid(fams, w)
    raw = saliency.raw_scores(fams)
    for p in m.parameters():
        p.grad.mul_(1000.0)
    s2 = saliency.hybrid(fams, w)
    assert torch.allclose(s1, s2, rtol=1e-5)
    raw2 = saliency.raw_scores(fams)
    assert torch.allclose(raw2["taylor_second_order"], raw["taylor_second_order"] * 1e6, rtol=1e-4)
    for c, s in saliency.normalize(raw).items():
        assert abs(float(s.norm()) - 1.0) < 1e-3, c  # up to the 1e-8 safeguard
    with pytest.raises(ValueError, match="unknown saliency criteria"):
        saliency.hybrid(fams, {"loss": 1.0})


def test_selection_never_empties_a_family():
    _, fams = toy()
    scores = torch.tensor([0.0] * 6 + [0.1, 0.2, 0.3, 0.4], dtype=torch.float64)  # family a is least salient
    chosen = select_lowest(scores, 7, fams, set(), min_keep=1)
    assert chosen == [0, 1, 2, 3, 4, 6, 7]  # a keeps one group; the quota is filled from b
    assert select_lowest(scores, 3, fams, {0, 1}, min_keep=1) == [2, 3, 4]


def test_cric_restores_weights_bit_for_bit():
    m, fams = toy()
    opt = SGD(m.parameters(), lr=0.05)
    x, y = torch.randn(16, 2, 5, 5), torch.randint(0, 3, (16,))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    rec = cric.run(fams, m, opt, train_loss=lambda i: nn.functional.cross_entropy(m(x[i % 4 * 4:][:4]), y[i % 4 * 4:][:4]),
                   fixed_loss=lambda: nn.functional.cross_entropy(m(x), y), target=0.5,
                   weights={c: 0.2 for c in saliency.CRITERIA}, max_cycles=3, sampling_steps=3)
    assert rec["restore_exact"]
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    assert all(torch.equal(b, torch.zeros_like(b)) for b in opt.buf)
    assert len(rec["selected"]) == target_count(fams, 0.5) and len(rec["loss_ratios"]) == 2
    assert rec["cycles"][0]["violating"] == 5 and rec["exploratory_steps"] >= 3


def test_families_follow_the_shared_zig_partition():
    from steps.nn import zig
    from steps.nn.demo_resnet import DemoResNet

    m = DemoResNet((8, 16, 16))
    part = zig.partition(m, torch.zeros(1, 1, 14, 14))
    fams = families_from_partition(m, part)
    assert sum(f.n for f in fams) == part.num_groups
    coupled = [f for f in fams if "stem" in f.name]
    assert coupled and "block1" in coupled[0].name  # the residual add couples stem and block 1
    assert group_vectors(fams[0]).shape[0] == fams[0].n
    # zeroing groups through the families zeroes those ZIGs of the partition (and only them)
    ids = [f.ids[0] for f in fams]
    offs, k = [], 0
    for f in fams:
        offs.append(k)
        k += f.n
    scale_groups(fams, offs, 0.0)
    zero = zig.GroupIndex(m, part).zero_groups()
    assert sorted(int(i) for i in torch.nonzero(zero).flatten()) == sorted(ids)


def test_target_count_of_a_matched_target_is_exact():
    """A matched run's target is k/G (the groups its DHSPG run removed): it must prune k, not k − 1."""
    from types import SimpleNamespace

    for g in (160, 163, 1000):
        fams = [SimpleNamespace(n=g - g // 3), SimpleNamespace(n=g // 3)]
        assert [target_count(fams, k / g) for k in range(int(0.999 * g))] == list(range(int(0.999 * g)))
