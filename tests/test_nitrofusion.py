"""NitroFusion's mechanism (steps.nitrofusion): the head pool's layout, sampling per noise-level
group, refresh (exactly the drawn heads, optimiser state cleared), the frozen backbone, the
generator-lr-0 sanity check, determinism, and bottom-up refinement."""

from __future__ import annotations

import torch

from steps.core.cli import load
from steps.nitrofusion.adversarial import train_run
from steps.nitrofusion.common import refine
from steps.nitrofusion.discriminator import HeadPool, PoolSpec, layout
from steps.nn import rectified_flow as rf
from steps.nn.optim import Adam
from steps.nn.velocity import VelocityMLP

SPEC = PoolSpec(ranges=((0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.95)), heads_per_group=24, per_step=2,
                local=True, refresh_share=0.02, refresh_every=20)


class FakeData:
    """The part of CaptionedDigits the adversarial phase uses, with 5 one-hot captions."""

    x_dim, c_dim = 64, 5

    def __init__(self):
        self.null = torch.zeros(1, 5)

    def cond(self, cid):
        return torch.nn.functional.one_hot(cid, 5).float()


def _pool(spec=SPEC, seed=0):
    return HeadPool(spec, 32, 5, 3, torch.Generator().manual_seed(seed))


def test_layout_halves_global_local_and_conditional():
    lay = layout(24, local=True)
    assert [k for k, _ in lay].count("global") == 12 and [k for k, _ in lay].count("local") == 12
    assert sum(c for k, c in lay if k == "global") == 6 and sum(c for k, c in lay if k == "local") == 6
    assert layout(1, local=True)[0] == ("global", True) and layout(1, local=False) == [("global", True)]
    assert all(k == "global" for k, _ in layout(24, local=False))


def test_sample_draws_per_group_and_t_in_range():
    pool = _pool()
    g = torch.Generator().manual_seed(1)
    chosen = pool.sample(g)
    assert [len(ids) for ids in chosen] == [2, 2, 2, 2]
    assert all(pool.group_of(i) == grp for grp, ids in enumerate(chosen) for i in ids)
    groups = torch.arange(400) % 4
    t = pool.draw_t(groups, g)
    for grp, (lo, hi) in enumerate(SPEC.ranges):
        assert ((t[groups == grp] >= lo) & (t[groups == grp] < hi)).all()


def test_scores_use_only_their_groups_rows():
    pool = _pool()
    backbone = VelocityMLP(64, 5, hidden=32, depth=3)
    n = 40
    x, c = torch.randn(n, 64), torch.nn.functional.one_hot(torch.arange(n) % 5, 5).float()
    groups = torch.arange(n) % 4
    t, eps = pool.draw_t(groups, torch.Generator()), torch.randn(n, 64)
    chosen = [[0], [], [], []]
    s = pool.scores(backbone, x, c, torch.zeros(1, 5), t, eps, groups, chosen)
    x2 = x.clone()
    x2[groups != 0] += 5.0  # other groups' rows change: head 0's scores must not
    s2 = pool.scores(backbone, x2, c, torch.zeros(1, 5), t, eps, groups, chosen)
    assert len(s) == 1 and s[0].shape == (10,) and torch.equal(s[0], s2[0])


def test_refresh_reinitialises_exactly_the_drawn_heads():
    pool = _pool()
    opt = Adam(pool.parameters(), lr=1e-3, betas=(0.0, 0.99))
    for p in opt.params:
        p.grad = torch.ones_like(p)
    opt.step()
    before = pool.checksums()
    ids = pool.refresh(torch.Generator().manual_seed(3), opt)
    after = pool.checksums()
    assert len(ids) == SPEC.refresh_count() == 2  # 2 % of 96 heads, at least one
    assert [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a] == ids
    fresh = {id(p) for i in ids for p in pool.heads[i].parameters()}
    for k, p in enumerate(opt.params):
        assert (float(opt.steps[k]) == 0.0) == (id(p) in fresh)
    assert PoolSpec(SPEC.ranges, 2, 1, True, 0.02, 10).refresh_count() == 1


def _run(tmp_path, name, *overrides):
    cfg = load("nitrofusion", "adversarial", ["scale=smoke", "adversarial.steps=6", "adversarial.batch=16",
                                              "adversarial.gap_every=3", "adversarial.gap_n=20",
                                              "discriminator.refresh.every=2", *overrides])
    data = FakeData()
    torch.manual_seed(0)
    teacher = VelocityMLP(64, 5, hidden=32, depth=3)
    backbone = rf_frozen(teacher)
    gen = VelocityMLP(64, 5, hidden=32, depth=3)
    gen.load_state_dict(teacher.state_dict())
    reals = (torch.randn(40, 64), torch.arange(40) % 5)
    held = (torch.randn(40, 64), torch.arange(40) % 5)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    res = train_run(cfg, 0, "weak", "nitro", gen, backbone, data, reals, held, tmp_path / f"{name}.pt")
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items()), "backbone must stay frozen"
    return res, teacher


def rf_frozen(m):
    from steps.instaflow.common import frozen_copy

    return frozen_copy(m)


def test_adversarial_run_is_deterministic_and_checked(tmp_path):
    a, teacher = _run(tmp_path, "a")
    b, _ = _run(tmp_path, "b")
    assert all(torch.equal(a["gen"][k], b["gen"][k]) for k in a["gen"])
    assert a["gap_trace"] == b["gap_trace"] and [p[0] for p in a["gap_trace"]] == [3, 6]
    assert a["refresh_events"] == 3 and a["refresh_ok"] == 1
    assert any(not torch.equal(a["gen"][k], v) for k, v in teacher.state_dict().items())


def test_generator_lr_zero_keeps_the_start(tmp_path):
    # The prototype's corrected sanity check: with G's lr 0 the student is the base student.
    res, teacher = _run(tmp_path, "z", "adversarial.lr_g=0.0")
    assert all(torch.equal(res["gen"][k], v) for k, v in teacher.state_dict().items())


def test_refine_without_renoise_is_one_step_and_uses_the_same_weights():
    torch.manual_seed(0)
    gen = VelocityMLP(64, 5, hidden=16, depth=2)
    z, c = torch.randn(8, 64), torch.zeros(8, 5)
    assert torch.equal(refine(gen, z, c, [], torch.Generator()), rf.one_step(gen, z, c).detach())
    calls = []
    gen.register_forward_hook(lambda *a: calls.append(1))
    refine(gen, z, c, [0.5, 0.75, 0.9], torch.Generator().manual_seed(0))
    assert len(calls) == 4


def test_dvc_stage_takes_the_borrowed_instaflow_outputs_as_deps():
    import pytest

    from steps.core import dvc_sync
    from steps.core.errors import ConfigError

    outs = ["models/instaflow/rf1_s0.pt", "data/instaflow/digits.npz", "results/nitrofusion/fid.json"]
    st = dvc_sync.paper_stage("nitrofusion", "mini", outs, [], figures=False, others=["instaflow", "nitrofusion"])
    assert {"models/instaflow", "data/instaflow"} <= set(st["deps"]) and "results/instaflow" not in st["deps"]
    assert st["outs"] == ["results/nitrofusion"]
    with pytest.raises(ConfigError, match="cannot be versioned per paper"):
        dvc_sync.paper_stage("nitrofusion", "mini", outs, [], figures=False)
