"""Coupled pairs (z, X1 = ODE[v](z | c)) from a flow, by Euler with classifier-free guidance
(InstaFlow §3.2: noises, captions and the teacher's outputs). Reflow and distillation generate
the pairs of their teacher in-process; every flow of one seed gets the same z and captions, so
1-RF and 2-RF pairs differ only in the flow that maps them (the pitfall the spec names)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import distributed, seeding
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
    return {"z": z, "x1": x1, "caption_id": caption_id}
