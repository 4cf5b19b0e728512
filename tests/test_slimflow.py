"""SlimFlow's mechanism (steps.slimflow.mechanism): the annealing schedule, the noise
perturbation and the Flow-Guided Distillation loss, with the spec's pitfalls as targets."""

from __future__ import annotations

import math

import pytest
import torch

from steps.nn import rectified_flow as rf
from steps.nn.velocity import VelocityMLP, n_params
from steps.slimflow import mechanism as m


def test_linear_beta_anneals_from_one_to_zero():
    assert m.beta(0, 100) == 1.0
    assert m.beta(50, 100) == pytest.approx(0.5)
    assert m.beta(100, 100) == 0.0 and m.beta(10_000, 100) == 0.0
    assert m.beta(5, 0) == 0.0  # no warm-up: standard reflow
    assert m.beta(0, 100, "cos") == 1.0 and m.beta(100, 100, "cos") == pytest.approx(0.0)
    assert m.beta(100, 100, "exp") == pytest.approx(math.exp(-1))
    with pytest.raises(ValueError, match="unknown annealing schedule"):
        m.beta(0, 10, "sqrt")


def test_perturbation_is_variance_preserving_with_fresh_noise():
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(20_000, 16, generator=g)
    assert m.perturb_noise(z0, 0.0, g) is z0  # β = 0: the teacher's own noise
    a = m.perturb_noise(z0, 0.6, torch.Generator().manual_seed(1))
    b = m.perturb_noise(z0, 0.6, torch.Generator().manual_seed(2))
    assert a.var().item() == pytest.approx(1.0, abs=0.03)  # sqrt(1 − β²)² + β² = 1
    assert not torch.equal(a, b)  # fresh ε per draw
    corr = torch.corrcoef(torch.stack([z0.flatten(), a.flatten()]))[0, 1].item()
    assert corr == pytest.approx(0.8, abs=0.02)  # sqrt(1 − 0.36)
    ind = m.perturb_noise(z0, 1.0, g)  # β = 1: independent of the pair
    assert abs(torch.corrcoef(torch.stack([z0.flatten(), ind.flatten()]))[0, 1].item()) < 0.02


class Const(torch.nn.Module):
    """v(x, t, c) = u, whatever x, t, c."""

    def __init__(self, u: torch.Tensor):
        super().__init__()
        self.u = torch.nn.Parameter(u.clone())

    def forward(self, x, t, c):
        return self.u.expand_as(x)


def test_guidance_target_is_the_two_step_estimate_with_stop_grad():
    z, c = torch.randn(8, 4), torch.zeros(8, 1)
    v0 = torch.randn(8, 4, requires_grad=True)
    u = torch.randn(4)
    t = torch.full((8,), 0.25)
    target = m.guidance_target(v0, z, Const(u), c, t)
    assert not target.requires_grad  # stop-grad on the student's own prediction
    # x_t' = z + t'·v0; x1 = x_t' + (1 − t')·u; target = x1 − z = t'·v0 + (1 − t')·u
    assert torch.allclose(target, 0.25 * v0.detach() + 0.75 * u)


def test_fgd_guidance_vanishes_when_student_and_two_flow_agree_on_a_straight_flow():
    u = torch.randn(4)
    z0, z, c = torch.randn(16, 4), torch.randn(16, 4), torch.zeros(16, 1)
    x1 = z0 + u
    loss, parts = m.fgd_loss(Const(u), Const(u), z0, x1, c, z, m.guidance_times(16, 0.2, 0.8), 1.0)
    assert parts["pair"] == pytest.approx(0.0, abs=1e-12) and parts["guide"] == pytest.approx(0.0, abs=1e-12)


def test_naive_is_instaflow_distillation_and_fgd_adds_a_term_the_guide_does_not_train():
    torch.manual_seed(0)
    student, guide = VelocityMLP(6, 3, hidden=8), VelocityMLP(6, 3, hidden=8)
    z0, x1, z, c = torch.randn(32, 6), torch.randn(32, 6), torch.randn(32, 6), torch.randn(32, 3)
    t = m.guidance_times(32, 0.2, 0.8, torch.Generator().manual_seed(0))
    naive, parts = m.fgd_loss(student, None, z0, x1, c, z, t)
    assert set(parts) == {"pair"}
    assert torch.allclose(naive, rf.distill_loss(student, z0, c, x1))
    fgd, parts = m.fgd_loss(student, guide, z0, x1, c, z, t, weight=1.0)
    assert fgd.item() == pytest.approx(parts["pair"] + parts["guide"], rel=1e-5)
    fgd.backward()
    assert all(p.grad is None for p in guide.parameters())  # the 2-flow is only a guide
    assert all(p.grad is not None for p in student.parameters())


def test_guidance_times_stay_in_range():
    t = m.guidance_times(10_000, 0.2, 0.8, torch.Generator().manual_seed(0))
    assert t.min() >= 0.2 and t.max() <= 0.8 and abs(t.mean().item() - 0.5) < 0.01


def test_mini_student_is_at_least_eight_times_smaller_than_the_teacher():
    """The sizes params/ configure (MiniLM captions, 384-d) give the ratio the claims assume."""
    from steps.core.config import compose

    s, t = compose("slimflow", "mini").model, compose("instaflow", "mini").model
    student = VelocityMLP(64, 384, int(s.hidden), int(s.depth), int(s.t_dim), int(s.cond_dim))
    teacher = VelocityMLP(64, 384, int(t.hidden), int(t.depth), int(t.t_dim), int(t.cond_dim))
    assert n_params(teacher) / n_params(student) >= 8
