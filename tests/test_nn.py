"""Shared maths: rectified flow, Fréchet distance, our Adam, the velocity MLP."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from steps.nn import fid, optim, velocity
from steps.nn import rectified_flow as rf


def test_euler_is_exact_for_a_constant_velocity_and_straightness_is_zero():
    target = torch.randn(5, 3)

    def v(x, t, c):
        return target.expand_as(x)

    z = torch.randn(5, 3)
    assert torch.allclose(rf.euler(v, z, torch.zeros(5, 1), 7), z + target, atol=1e-6)
    assert torch.allclose(rf.one_step(v, z, torch.zeros(5, 1)), z + target)
    assert rf.straightness(v, z, torch.zeros(5, 1), 10).abs().max() < 1e-10


def test_straightness_is_positive_for_a_curved_flow():
    def v(x, t, c):  # rotation: trajectories are circles
        return torch.stack([-x[:, 1], x[:, 0]], 1)

    # Start points on the unit circle (straightness scales with the squared radius, so a random
    # point near the origin would make any threshold flaky); each trajectory is an arc of 1 rad.
    theta = torch.rand(20, generator=torch.Generator().manual_seed(0)) * 2 * torch.pi
    s = rf.straightness(v, torch.stack([theta.cos(), theta.sin()], 1), torch.zeros(20, 1), 50)
    assert (s > 1e-3).all()


def test_rf_loss_is_zero_for_the_true_velocity_of_a_straight_coupling():
    x0, x1 = torch.randn(8, 4), torch.randn(8, 4)
    t = torch.rand(8)
    # the velocity that knows the pair: along X_t the target is X1 - X0
    loss = rf.rf_loss(lambda x, tt, c: x1 - x0, x0, x1, None, t)
    assert loss.item() == 0.0
    xt = rf.interpolate(x0, x1, torch.zeros(8))
    assert torch.equal(xt, x0)


def test_guidance_one_is_the_plain_velocity_and_w_extrapolates():
    def v(x, t, c):
        return c.expand_as(x)

    x, t = torch.zeros(3, 2), torch.zeros(3)
    c, null = torch.ones(3, 2), torch.zeros(1, 2)
    assert torch.equal(rf.guided(v, 1.0, null)(x, t, c), c)
    assert torch.allclose(rf.guided(v, 1.5, null)(x, t, c), 1.5 * c)


def test_ema_update():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    wa = a.weight.detach().clone()
    rf.ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * wa + 0.1 * b.weight)


def test_frechet_distance_against_closed_form():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    # diagonal: |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_sample_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 8))
    assert abs(fid.fid(f, f)) < 1e-8


@pytest.mark.parametrize(("ours", "theirs", "wd"), [
    (optim.Adam, torch.optim.Adam, 0.0), (optim.Adam, torch.optim.Adam, 0.1), (optim.AdamW, torch.optim.AdamW, 0.1),
])
def test_our_adam_matches_torch_adam_step_for_step(ours, theirs, wd):
    torch.manual_seed(0)
    a = velocity.VelocityMLP(8, 4, hidden=16, depth=2)
    b = velocity.VelocityMLP(8, 4, hidden=16, depth=2)
    b.load_state_dict(a.state_dict())
    oa, ob = ours(a.parameters(), lr=1e-2, weight_decay=wd), theirs(b.parameters(), lr=1e-2, weight_decay=wd)
    for step in range(20):
        oa.lr = 1e-2 / (1 + step)  # a schedule sets lr between steps
        for g in ob.param_groups:
            g["lr"] = 1e-2 / (1 + step)
        x, t, c = torch.randn(16, 8), torch.rand(16), torch.randn(16, 4)
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            (m(x, t, c) ** 2).mean().backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_adamw_decays_weights_that_get_no_gradient_signal():
    """Decoupled decay shrinks θ by lr·λ even where the gradient is zero (Adam's L2 would not move it)."""
    p = torch.nn.Parameter(torch.ones(3))
    o = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.zeros(3)
    o.step()
    assert torch.allclose(p.detach(), torch.full((3,), 1 - 0.1 * 0.5))


def test_our_optimizers_do_not_import_dynamo():
    """The point of steps.nn.optim: torch.optim's first call imports torch._dynamo (≈ 1.3 s)."""
    code = ("import sys, torch; from steps.nn.optim import AdamW; m = torch.nn.Linear(2, 2); o = AdamW(m.parameters()); "
            "m(torch.ones(1, 2)).sum().backward(); o.step(); o.zero_grad(); o.load_state_dict(o.state_dict()); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_adam_state_roundtrip():
    m = torch.nn.Linear(3, 3)
    o = optim.Adam(m.parameters())
    m(torch.randn(2, 3)).sum().backward()
    o.step()
    o2 = optim.Adam(m.parameters())
    o2.load_state_dict(o.state_dict())
    assert torch.equal(o2.exp_avg[0], o.exp_avg[0]) and o2.steps[0].item() == 1.0


def test_velocity_mlp_shapes_and_scalar_time():
    m = velocity.VelocityMLP(64, 384)
    out = m(torch.randn(5, 64), torch.tensor(0.5), torch.randn(5, 384))
    assert out.shape == (5, 64)
    assert 150_000 < velocity.n_params(m) < 250_000  # the spec's ≈ 0.18M
