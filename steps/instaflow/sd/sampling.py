"""Samplers of the full-scale pipeline: SD 1.5 with a DPM-Solver and classifier-free guidance
(the teacher of the reflow pairs), and the rectified flows by Euler (steps.nn.rectified_flow).

Classifier-free guidance, for noise predictions as for velocities: out = u(·|∅) + w·(u(·|c) − u(·|∅)),
with ∅ the empty prompt's embedding (SD's convention, which pipeline_rf.py keeps).
"""

from __future__ import annotations

import torch

from steps.instaflow.sd import models
from steps.nn import rectified_flow as rf


@torch.no_grad()
def dpm_solver(unet, scheduler_config: dict, z: torch.Tensor, c: torch.Tensor, steps: int, guidance: float,
               null: torch.Tensor, algorithm: str = "dpmsolver++", order: int = 2) -> torch.Tensor:
    """SD's ODE from x_T = z to its image latent with diffusers' DPMSolverMultistepScheduler
    (`steps` steps; InstaFlow's pairs: 25 steps — a secondary source, unverified)."""
    from diffusers import DPMSolverMultistepScheduler

    sched = DPMSolverMultistepScheduler.from_config(scheduler_config, algorithm_type=algorithm, solver_order=order)
    sched.set_timesteps(int(steps), device=z.device)
    x = z * sched.init_noise_sigma
    nc = null.expand(c.shape[0], *null.shape[1:])
    for t in sched.timesteps:
        if guidance == 1.0:
            eps = unet(x, t, encoder_hidden_states=c).sample
        else:
            e_null, e_cond = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([nc, c])).sample.chunk(2)
            eps = e_null + guidance * (e_cond - e_null)
        x = sched.step(eps.to(x.dtype), t, x).prev_sample
    return x


def euler(unet, z: torch.Tensor, c: torch.Tensor, steps: int, guidance: float, null: torch.Tensor) -> torch.Tensor:
    """A rectified flow's ODE by `steps` Euler steps with guidance (pipeline_rf.py's loop)."""
    return rf.euler(models.velocity(unet), z, c, int(steps), float(guidance), null)


def one_step(unet, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """InstaFlow's one-step student: z + v(z, 0 | c), no guidance (baked in by distillation)."""
    return rf.one_step(models.velocity(unet), z, c)
