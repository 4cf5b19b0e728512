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


def schedule(scheduler_config: dict, n: int) -> list[int]:
    """The noise levels of n-step inference: diffusers' LCMScheduler on SDXL's scheduler config
    with timestep_spacing = trailing, as NitroFusion's README builds it (n = 1: [999]; n = 2:
    [999, 499]; n = 4: [999, 759, 499, 259])."""
    from diffusers import LCMScheduler

    sched = LCMScheduler.from_config(scheduler_config, timestep_spacing="trailing")
    sched.set_timesteps(int(n))
    return [int(t) for t in sched.timesteps]


def shift(s: int, shifted: int) -> int:
    """The timestep the UNet is fed at noise level s: ⌊s·shifted/1000⌋ (README's
    TimestepShiftLCMScheduler; shifted = 250 for Realism / DMD2, 500 per the spec for Vibrant)."""
    return int(s * shifted / 1000)


def refine(unet, ac: torch.Tensor, z: torch.Tensor, cond: Cond, timesteps: list[int], shifted: int,
           generator: torch.Generator | None) -> torch.Tensor:
    """Bottom-up refinement with one set of weights, the README's LCM sampling: at each noise
    level s_k, x̂0 = (x − √(1 − ᾱ)·ε̂)/√ᾱ with ε̂ = unet(x, shift(s_k) | c); then x is x̂0 re-noised
    to the next level with fresh noise. len(timesteps) UNet calls; z is the pure noise of the
    first level. LCM's boundary scalings (c_skip ≤ 4·10⁻⁹ for s ≥ 250) are left out.
    Grad-enabled: the training phase calls it for one step."""
    n = z.shape[0]
    x = z
    for k, s in enumerate(timesteps):
        sv = torch.full((n,), int(s), device=z.device)
        x0 = x0_from_eps(unet, ac, x, sv, cond, torch.full((n,), shift(int(s), shifted), device=z.device))
        if k + 1 == len(timesteps):
            return x0
        eps = torch.randn(z.shape, generator=generator).to(z.device, z.dtype)
        x = renoise(ac, x0, torch.full((n,), int(timesteps[k + 1]), device=z.device), eps)
    return x
