"""What NitroFusion's miniature phases share: the one-step starting points, the teacher's "real"
samples, and bottom-up refinement.

Starting points (the paper fine-tunes an existing distilled one-step model: DMD2 → Realism,
Hyper-SD → Vibrant): `distilled` is InstaFlow's 2-RF + distillation student (its long budget),
`weak` is InstaFlow's 1-RF teacher used as a one-step generator (z + v(z, 0 | c)). The spec's
prototype found the distilled student already at the metric's floor, so both are run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from steps.core import seeding
from steps.instaflow import pairs
from steps.instaflow.common import CaptionedDigits, load_flow
from steps.nn import rectified_flow as rf


def adversarial_path(models_dir, start: str, seed: int) -> Path:
    return Path(models_dir) / f"adversarial_{start}_s{seed}.pt"


def load_start(name: str, teacher_path, student_path, budget: str) -> torch.nn.Module:
    """The one-step generator a run starts from (a VelocityMLP sampled as z + v(z, 0 | c))."""
    if name == "weak":
        return load_flow(teacher_path, "teacher checkpoint")
    if name == "distilled":
        from steps.instaflow.distill import load_students

        students = load_students(student_path)
        if budget not in students:
            from steps.core.errors import ArtifactError

            raise ArtifactError(f"{student_path} has no '{budget}' snapshot (has {', '.join(students)})")
        return students[budget]
    from steps.core.errors import ConfigError

    raise ConfigError(f"unknown start '{name}'; valid: distilled, weak")


@torch.no_grad()
def teacher_reals(teacher, data: CaptionedDigits, n: int, seed: int, stream: str, steps: int, guidance: float):
    """n teacher samples ("reals" of the distillation setting): `steps` Euler steps of the
    multi-step teacher from fresh noises, captions of random training images."""
    z, cid = pairs.draw(data, n, seed, stream)
    x = rf.euler(teacher, z, data.cond(cid), steps, guidance, data.null)
    return x, cid


@torch.no_grad()
def refine(gen, z: torch.Tensor, c: torch.Tensor, renoise: list[float], generator: torch.Generator) -> torch.Tensor:
    """Bottom-up refinement with the same weights (README: LCM scheduler with a shifted timestep):
    one step x̂ = z + v(z, 0 | c), then for each t_k: re-noise x_{t_k} = t_k·x̂ + (1 − t_k)·ε and
    jump to the end, x̂ = x_{t_k} + (1 − t_k)·v(x_{t_k}, t_k | c). len(renoise) + 1 model calls."""
    x = rf.one_step(gen, z, c)
    for tk in renoise:
        eps = torch.randn(z.shape, generator=generator)
        t = torch.full((z.shape[0],), float(tk))
        xt = tk * x + (1.0 - tk) * eps
        x = xt + (1.0 - tk) * gen(xt, t, c)
    return x


def step_gen(seed: int, stream: str, step: int = 0) -> torch.Generator:
    return seeding.step_generator(seed, stream, step)
