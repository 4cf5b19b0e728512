"""Coupled pairs (z, X1 = ODE[v](z | c)) from a flow, by Euler with classifier-free guidance
(InstaFlow §3.2: noises, captions and the teacher's outputs). Reflow and distillation generate
the pairs of their teacher in-process; every flow of one seed gets the same z and captions, so
1-RF and 2-RF pairs differ only in the flow that maps them (the pitfall the spec names)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import distributed, seeding
from steps.core.errors import ArtifactError
from steps.core.progress import Progress, log
from steps.instaflow.common import CaptionedDigits
from steps.nn import rectified_flow as rf


def draw(data: CaptionedDigits, n: int, seed: int, stream: str) -> tuple[torch.Tensor, torch.Tensor]:
    """n noises and n caption ids (the captions of n random images), fixed by (seed, stream)."""
    g = seeding.step_generator(seed, stream)
    z = torch.randn(n, data.x_dim, generator=g)
    caption_id = data.caption_id[torch.randint(len(data.x), (n,), generator=g)]
    return z, caption_id


@torch.no_grad()
def generate(flow, data: CaptionedDigits, cfg: DictConfig, seed: int, name: str) -> dict[str, torch.Tensor]:
    """{z, x1, caption_id}: `pairs.n` pairs from `flow` with `pairs.ode_steps` Euler steps at
    guidance `pairs.guidance`. Under several processes each computes a contiguous block of the
    `pairs.batch`-sized batches and they exchange them: every rank ends with all pairs, the
    same ones one process computes."""
    p = cfg.pairs
    n, batch = int(p.n), int(p.batch)
    z, caption_id = draw(data, n, seed, "pairs")
    x1 = torch.empty_like(z)
    dist = distributed.current()
    starts = list(range(0, n, batch))
    bar = Progress(n, f"pairs from {name}", cfg.progress.every_s)
    for b in dist.mine(len(starts)):
        sl = slice(starts[b], starts[b] + batch)
        x1[sl] = rf.euler(flow, z[sl], data.cond(caption_id[sl]), int(p.ode_steps), float(p.guidance), data.null)
        bar.update(x1[sl].shape[0])
    bar.close()
    for b, i in enumerate(starts) if dist.world > 1 else ():
        dist.broadcast_(x1[i:i + batch], src=dist.owner(b, len(starts)))
    log.info(f"{n} pairs from {name}: {p.ode_steps} Euler steps, guidance {p.guidance}")
    return drop_diverged({"z": z, "x1": x1, "caption_id": caption_id}, p.get("max_abs"), name)


def drop_diverged(coupled: dict[str, torch.Tensor], max_abs: float | None, name: str) -> dict[str, torch.Tensor]:
    """The pairs without those whose trajectory diverged: x1 not finite or beyond `max_abs` in
    any pixel (images lie in [-1, 1]). A weak 1-RF (64 wide on 784 pixels) sends a few of 20,000
    Euler trajectories to |x1| ≈ 1e20, whose squared loss overflows float32 and turns reflow and
    distillation into NaN from their first steps. None keeps every pair; when none is dropped the
    same tensors come back, so the result is what it was without the guard."""
    if max_abs is None:
        return coupled
    x1 = coupled["x1"]
    keep = torch.isfinite(x1).all(1) & (x1.abs().amax(1) <= float(max_abs))
    dropped = int((~keep).sum())
    log.info(f"pairs from {name}: {dropped} of {len(x1)} dropped as diverged (x1 not finite or |x1| > {max_abs})")
    if dropped == 0:
        return coupled
    if dropped == len(x1):
        raise ArtifactError(f"every pair from {name} diverged (|x1| > {max_abs} or not finite): the flow is broken")
    return {k: v[keep] for k, v in coupled.items()}
