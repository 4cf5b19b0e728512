"""SlimFlow's two mechanisms as pure, shape-agnostic functions (arXiv 2407.12718, §3; official
code github.com/yuanzhi-zhu/SlimFlow, reflow/reflow.py), shared by the miniature and full scale.

Convention (the official code's): X_t = t·X1 + (1 − t)·X0, X0 noise, X1 data, velocity X1 − X0.

* Annealing Reflow (§3.2): on a teacher pair (z0, x1 = ODE[teacher](z0)) the noise is perturbed
  z0' = sqrt(1 − β_k²)·z0 + β_k·ε with fresh ε ~ N(0, I) every step (variance-preserving), and
  β_k falls from 1 (independent coupling: plain flow matching on the teacher's outputs) to 0
  (pure reflow on the teacher's coupling). The official `x0_randomness warmup_K` schedules are
  linear β_k = 1 − min(1, k/K) (the default), `exp` e^{−k/K} and `cos` (1 + cos(π·min(1, k/K)))/2.
* Flow-Guided Distillation (§3.3): the one-step student (t fixed at 0) minimises
  D(z0 + v_s(z0, 0), x1) on teacher pairs plus, for fresh z and t' ~ U[0.2, 0.8],
  D(v_s(z, 0), x_t' + (1 − t')·v_2(x_t', t') − z) with x_t' = z + t'·v_s(z, 0) under stop-grad
  and v_2 the small 2-flow (`teacher_loss_new`): a two-step estimate of the 2-flow that
  regularises the student where the pairs are sparse.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
SCHEDULES = ("linear", "exp", "cos")


def beta(step: int, warmup: int, schedule: str = "linear") -> float:
    """β_k of Annealing Reflow at training step k (1 → 0 over `warmup` steps). warmup ≤ 0 means
    β ≡ 0 (standard reflow on the teacher's pairs)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown annealing schedule '{schedule}'; valid: {', '.join(SCHEDULES)}")
    if warmup <= 0:
        return 0.0
    frac = min(1.0, step / warmup)
    if schedule == "linear":
        return 1.0 - frac
    if schedule == "exp":  # never reaches 0 exactly, as in the official code
        return math.exp(-step / warmup)
    return (1.0 + math.cos(math.pi * frac)) / 2.0


def perturb_noise(z0: torch.Tensor, b: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """z0' = sqrt(1 − β²)·z0 + β·ε with fresh ε: a unit-variance noise whose coupling with the
    teacher's x1 weakens as β grows (β = 1: independent of x1). The data x1 is never perturbed."""
    if b <= 0.0:
        return z0
    eps = torch.randn(z0.shape, generator=generator, dtype=z0.dtype).to(z0.device)
    return math.sqrt(max(0.0, 1.0 - b * b)) * z0 + b * eps


def one_step(v: Velocity, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The student's velocity at t = 0 (the official code evaluates t = eps ≈ 0)."""
    return v(z, torch.zeros(z.shape[0], dtype=z.dtype, device=z.device), c)


def guidance_target(student_v0: torch.Tensor, z: torch.Tensor, flow2: Velocity, c: torch.Tensor,
                    t: torch.Tensor) -> torch.Tensor:
    """The guidance target x_t' + (1 − t')·v_2(x_t', t') − z with x_t' = z + t'·v_s(z, 0), all
    without gradient (the student's own prediction is detached: stop-grad, as the paper says)."""
    with torch.no_grad():
        tb = t.view(-1, *([1] * (z.dim() - 1)))
        xt = z + tb * student_v0.detach()
        x1 = xt + (1.0 - tb) * flow2(xt, t, c)
        return x1 - z


def fgd_loss(student: Velocity, flow2: Velocity | None, z0: torch.Tensor, x1: torch.Tensor, c: torch.Tensor,
             z: torch.Tensor, t: torch.Tensor, weight: float = 1.0,
             distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
    """Flow-Guided Distillation: D(z0 + v_s(z0, 0), x1) + weight·D(v_s(z, 0), target) (§3.3).
    With flow2=None (or weight 0) it is naive one-step distillation (InstaFlow's). `distance`
    compares images (L2 by default, LPIPS at full scale; the guidance term is compared as images
    z + v, which for L2 is the same as comparing velocities). Returns (loss, its parts)."""
    dist = distance or F.mse_loss
    pair = dist(z0 + one_step(student, z0, c), x1)
    if flow2 is None or weight == 0.0:
        return pair, {"pair": float(pair.detach())}
    v0 = one_step(student, z, c)
    target = guidance_target(v0, z, flow2, c, t)
    guide = dist(z + v0, z + target)
    return pair + weight * guide, {"pair": float(pair.detach()), "guide": float(guide.detach())}


def guidance_times(n: int, lo: float, hi: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """t' ~ U[lo, hi] (the official code: U[0.2, 0.8])."""
    return lo + (hi - lo) * torch.rand(n, generator=generator)
