"""Rectified flow (Liu, Gong & Liu, arXiv 2209.03003) and its text-conditioned use in InstaFlow
(arXiv 2309.06380): the loss, the Euler sampler with classifier-free guidance, coupled pairs,
straightness and one-step distillation. Shape-agnostic: the same code drives 8×8 digits at mini
and Stable Diffusion latents at full.

Conventions (InstaFlow's official pipeline): t runs from 0 (noise X0) to 1 (data X1),
X_t = t·X1 + (1 − t)·X0, and Euler steps X_{t+dt} = X_t + dt·v(X_t, t | c).
A velocity is any callable v(x, t, c) with t of shape (batch,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *([1] * (x.dim() - 1)))


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """X_t = t·X1 + (1 − t)·X0, the straight path between a noise and a data point."""
    tb = _bcast(t, x0)
    return tb * x1 + (1.0 - tb) * x0


def rf_loss(v: Velocity, x0: torch.Tensor, x1: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """E‖(X1 − X0) − v(X_t, t | c)‖² (rectified flow objective; InstaFlow's text-conditioned reflow
    when (X0, X1) are the noise and the teacher's ODE output for caption c)."""
    xt = interpolate(x0, x1, t)
    return F.mse_loss(v(xt, t, c), x1 - x0)


def guided(v: Velocity, guidance: float, null_c: torch.Tensor | None) -> Velocity:
    """Classifier-free guidance on velocities: v_w = v(·|∅) + w·(v(·|c) − v(·|∅)); w = 1 is plain v."""
    if guidance == 1.0 or null_c is None:
        return v

    def vw(x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        nc = null_c.expand_as(c) if null_c.shape[0] == 1 else null_c
        both = v(torch.cat([x, x]), torch.cat([t, t]), torch.cat([nc, c]))
        v_null, v_cond = both.chunk(2)
        return v_null + guidance * (v_cond - v_null)

    return vw


@torch.no_grad()
def euler(
    v: Velocity,
    z: torch.Tensor,
    c: torch.Tensor,
    steps: int,
    guidance: float = 1.0,
    null_c: torch.Tensor | None = None,
) -> torch.Tensor:
    """Solve dX/dt = v_w(X, t | c) from t = 0 (X0 = z) to t = 1 with `steps` Euler steps."""
    x = z
    for x_next, _ in _trajectory(v, z, c, steps, guidance, null_c):
        x = x_next
    return x


def _trajectory(v: Velocity, z, c, steps: int, guidance: float, null_c):
    """Yield (X_{t+dt}, v(X_t, t)) along `steps` Euler steps from X_0 = z."""
    vw = guided(v, guidance, null_c)
    x, dt = z, 1.0 / steps
    for i in range(steps):
        t = torch.full((z.shape[0],), i * dt, device=z.device, dtype=z.dtype)
        vel = vw(x, t, c)
        x = x + dt * vel
        yield x, vel


@torch.no_grad()
def straightness(
    v: Velocity,
    z: torch.Tensor,
    c: torch.Tensor,
    steps: int,
    guidance: float = 1.0,
    null_c: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample S = ∫₀¹ ‖(Z1 − Z0) − v(Z_t, t)‖² dt along the flow's own Euler trajectory
    (Liu et al. 2022, Eq. 5; InstaFlow §3), averaged over dimensions. 0 for a straight flow."""
    x, vels = z, []
    for x_next, vel in _trajectory(v, z, c, steps, guidance, null_c):
        x = x_next
        vels.append(vel)
    chord = x - z
    dims = tuple(range(1, z.dim()))
    return torch.stack([((chord - vel) ** 2).mean(dim=dims) for vel in vels]).mean(0)


def one_step(v: Velocity, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The one-step generator X1 ≈ z + v(z, 0 | c) (InstaFlow's student, t fixed at 0)."""
    t = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
    return z + v(z, t, c)


def distill_loss(
    student: Velocity,
    z: torch.Tensor,
    c: torch.Tensor,
    x1: torch.Tensor,
    similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """InstaFlow's distillation: D(z + v_s(z, 0 | c), ODE[v_teacher](z | c)); D is L2 by default
    (LPIPS in the paper's second stage)."""
    pred = one_step(student, z, c)
    return F.mse_loss(pred, x1) if similarity is None else similarity(pred, x1)


def ema_decay(decay: float, step: int, warmup: bool = True) -> float:
    """The EMA decay at `step`, with the usual warm-up min(decay, (1 + step) / (10 + step)) so
    that early snapshots are not dominated by the initial weights (the paper describes no EMA).
    Without warm-up, an EMA of 0.999 still holds 37 % of the initial weights at step 1000,
    which favours whichever student starts from the better one-step generator."""
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1 − decay)·model, parameter by parameter."""
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm, 1.0 - decay)
