"""Samplers of NitroFusion's full scale: the multi-step SDXL teacher (its own Euler scheduler
with classifier-free guidance — the "reals") and the one-step students with bottom-up
refinement (the same weights for 1, 2 or 4 steps)."""

from __future__ import annotations

import torch

from steps.nitrofusion.sdxl.models import Cond, renoise, x0_from_eps


@torch.no_grad()
def teacher(unet, scheduler_config: dict, z: torch.Tensor, cond: Cond, null: Cond, steps: int,
            guidance: float) -> torch.Tensor:
    """SDXL's ODE from noise z to an image latent: diffusers' EulerDiscreteScheduler from the
    model's scheduler config, `steps` steps, guidance ε∅ + w·(ε_c − ε∅) (null = zero conditioning)."""
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler.from_config(scheduler_config)
    sched.set_timesteps(int(steps), device=z.device)
    x = z * sched.init_noise_sigma
    both = Cond.cat([null, cond])
    for t in sched.timesteps:
        inp = sched.scale_model_input(x, t)
        if guidance == 1.0:
            eps = unet(inp, t, **cond.kwargs()).sample
        else:
            e_null, e_cond = unet(torch.cat([inp, inp]), t, **both.kwargs()).sample.chunk(2)
            eps = e_null + guidance * (e_cond - e_null)
        x = sched.step(eps.to(x.dtype), t, x).prev_sample
    return x


def schedule(n: int, shifted: int, first: int = 999) -> list[int]:
    """The timesteps of n-step bottom-up refinement: the one-step start's timestep `first`
    (999), then n − 1 re-noise levels evenly down to the start's shifted timestep (README's
    TimestepShiftLCMScheduler: 250 for DMD2-based Realism, 500 for Hyper-SD-based Vibrant).
    Ours: how the README's scheduler spaces the intermediate steps is not restated here."""
    if n <= 1:
        return [first]
    return [round(first + (shifted - first) * k / (n - 1)) for k in range(n)]


def refine(unet, ac: torch.Tensor, z: torch.Tensor, cond: Cond, timesteps: list[int],
           generator: torch.Generator) -> torch.Tensor:
    """Bottom-up refinement with one set of weights (LCM-style): x̂0 from the pure noise z fed at
    timesteps[0], then for each later s: re-noise x̂0 to x_s with fresh noise and predict x̂0
    again. len(timesteps) UNet calls. Grad-enabled: the training phase calls it for one step."""
    n = z.shape[0]
    x = x0_from_eps(unet, ac, z, torch.full((n,), timesteps[0], device=z.device), cond)
    for s in timesteps[1:]:
        eps = torch.randn(z.shape, generator=generator).to(z.device, z.dtype)
        sv = torch.full((n,), int(s), device=z.device)
        x = x0_from_eps(unet, ac, renoise(ac, x, sv, eps), sv, cond)
    return x
