"""The training loop InstaFlow's full-scale reflow and distillation share: staged batch sizes
(the model cards' recipes: reflow batch 64 × 70k then 1024 × 25k; distillation L2 then LPIPS,
batch 1024), AdamW from torch.optim, gradient accumulation up to the stage's global batch, bf16
autocast on CUDA, and data parallelism over the GPUs of one job when launched by torchrun
(`python -m torch.distributed.run --nproc_per_node=G -m steps.instaflow.sd.reflow ...`).

Resumable through steps.core.checkpoint.TrainLoop: only rank 0 writes the resume checkpoint, and
every rank reads it on restart. Randomness comes from step_generator(seed, phase/rank, step), so
a resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import seeding
from steps.core.checkpoint import TrainLoop
from steps.core.errors import ConfigError
from steps.core.progress import log


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist() -> Dist:
    """Join the process group when torchrun started several processes (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    if not td.is_initialized():
        td.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(td.get_rank(), td.get_world_size(), local)


class RankLoop(TrainLoop):
    """TrainLoop whose resume checkpoints are written by rank 0 only."""

    def __init__(self, dist: Dist, *args, **kwargs):
        self.dist = dist
        super().__init__(*args, **kwargs)

    def checkpoint(self, step: int) -> None:
        if self.dist.main:
            super().checkpoint(step)

    def finish(self) -> None:
        if self.dist.main:
            super().finish()


def stages_of(section: DictConfig) -> list[dict]:
    """The section's stages [{batch, steps, ...}], each with a name."""
    stages = [dict(s) for s in OmegaConf.to_container(section.stages)]
    if not stages or any(int(s["steps"]) < 1 or int(s["batch"]) < 1 for s in stages):
        raise ConfigError("stages must be a non-empty list of {batch: >0, steps: >0, ...}")
    for i, s in enumerate(stages):
        s.setdefault("name", s.get("loss", f"stage{i + 1}"))
    return stages


def stage_at(stages: list[dict], step: int) -> dict:
    """The stage that step (0-based, counted over all stages) belongs to."""
    end = 0
    for s in stages:
        end += int(s["steps"])
        if step < end:
            return s
    return stages[-1]


def micro_batches(batch: int, micro: int, world: int) -> tuple[int, int]:
    """(micro-batch size, micro-batches per process) that make up a global `batch`."""
    if batch % world:
        raise ConfigError(f"batch {batch} is not divisible by the {world} processes")
    per_rank = batch // world
    micro = min(int(micro), per_rank)
    if per_rank % micro:
        raise ConfigError(f"per-process batch {per_rank} is not a multiple of micro_batch {micro}")
    return micro, per_rank // micro


def autocast(device: torch.device):
    """bf16 autocast on CUDA (mixed precision, fp32 master weights); nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


LossFn = Callable[[torch.nn.Module, dict, int, torch.Generator], torch.Tensor]


def fit(cfg: DictConfig, section: DictConfig, unet: torch.nn.Module, out, desc: str, loss_fn: LossFn,
        dist: Dist, device: torch.device, after_step: Callable[[int], None] | None = None, **objects) -> RankLoop:
    """Train `unet` over the section's stages; returns the finished loop: write the output,
    then call its finish() to drop the resume checkpoint.

    `loss_fn(model, stage, micro, generator)` returns the mean loss of one micro-batch of
    `micro` examples; `model` is what to call forward (the DDP wrapper when distributed).
    `after_step(step)` runs after each optimizer step (EMA, snapshots); `objects` are extra
    state for the resume checkpoint.
    """
    stages = stages_of(section)
    total = sum(int(s["steps"]) for s in stages)
    if section.get("gradient_checkpointing") and hasattr(unet, "enable_gradient_checkpointing"):
        unet.enable_gradient_checkpointing()
    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=float(section.lr), betas=tuple(section.betas),
                            weight_decay=float(section.weight_decay), eps=float(section.eps))
    model = unet
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(unet, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    loop = RankLoop(dist, cfg, out, total, desc, model=unet, optimizer=opt, **objects)
    clip = section.get("max_grad_norm")
    current = None
    for step in loop:
        stage = stage_at(stages, step)
        if stage is not current:
            current = stage
            micro, n_micro = micro_batches(int(stage["batch"]), int(stage.get("micro_batch", section.micro_batch)), dist.world)
            for group in opt.param_groups:
                group["lr"] = float(stage.get("lr", section.lr))
            log.info(f"{desc} step {step}: stage {stage['name']}, global batch {stage['batch']} = "
                     f"{dist.world} process(es) × {n_micro} × {micro}")
        g = seeding.step_generator(int(cfg.seed), f"{desc}/rank{dist.rank}", step)
        opt.zero_grad(set_to_none=True)
        running = 0.0
        for m in range(n_micro):
            last = m == n_micro - 1
            sync = contextlib.nullcontext() if last or dist.world == 1 else model.no_sync()
            with sync:
                with autocast(device):
                    loss = loss_fn(model, stage, micro, g).float() / n_micro
                loss.backward()
            running += loss.item()
        if clip:
            torch.nn.utils.clip_grad_norm_(unet.parameters(), float(clip))
        opt.step()
        if after_step is not None:
            after_step(step)
        loop.log(loss=running, stage=stage["name"])
    return loop
