"""The training loop InstaFlow's full-scale reflow and distillation share: staged batch sizes
(the model cards' recipes: reflow batch 64 × 70k then 1024 × 25k; distillation L2 then LPIPS,
batch 1024), AdamW from torch.optim, gradient accumulation up to the stage's global batch, the
section's precision (auto: bf16 autocast on GPUs that have it), and data parallelism over the
processes the rule's launcher started (steps.core.distributed: torchrun over the GPUs of a node,
srun across nodes).

Resumable through steps.core.checkpoint.TrainLoop: only rank 0 writes the resume checkpoint,
every rank reads it on restart, on any number of processes. The data are sharded by pair
shards: rank r of N holds shards r, r + N, ... (steps.instaflow.sd.data.PairStore: the 1.25 M
pairs are 40 GB, too much for every process to hold) and draws its micro-batches from them with
step_generator(seed, phase/rank<r>, step), so a run is reproducible for a given number of
processes; a run resumed on another number continues with the data stream of that number.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import distributed, seeding
from steps.core.checkpoint import TrainLoop
from steps.core.errors import ConfigError
from steps.core.progress import log


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


def autocast(device: torch.device):
    """Inference in the precision training uses by default (bf16 on GPUs that have it)."""
    return distributed.autocast(distributed.precision("auto", device), device)


LossFn = Callable[[torch.nn.Module, dict, int, torch.Generator], torch.Tensor]


def fit(cfg: DictConfig, section: DictConfig, unet: torch.nn.Module, out, desc: str, loss_fn: LossFn,
        dist: distributed.Dist, device: torch.device, after_step: Callable[[int], None] | None = None,
        **objects) -> TrainLoop:
    """Train `unet` over the section's stages; returns the finished loop: write the output
    (rank 0, with loop.record() in its meta), then call its finish() to drop the resume checkpoint.

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
    model = dist.wrap(unet)
    prec = distributed.precision(section.get("precision"), device)
    plans = [distributed.batch_plan(int(s["batch"]), int(s.get("micro_batch", section.micro_batch)), dist.world)
             for s in stages]  # every stage checked before the first step
    loop = TrainLoop(cfg, out, total, desc, dist, model=unet, optimizer=opt, **objects)
    loop.describe(precision=prec, stages=[{"name": s["name"], "steps": int(s["steps"]), **p.record()} for s, p in zip(stages, plans, strict=True)])
    clip = section.get("max_grad_norm")
    current = None
    for step in loop:
        stage = stage_at(stages, step)
        plan = plans[stages.index(stage)]
        if stage is not current:
            current = stage
            for group in opt.param_groups:
                group["lr"] = float(stage.get("lr", section.lr))
            log.info(f"{desc} step {step}: stage {stage['name']}, global batch {stage['batch']} = "
                     f"{dist.world} process(es) × {plan.accumulation} × {plan.micro}, {prec}")
        g = seeding.step_generator(int(cfg.seed), f"{desc}/rank{dist.rank}", step)
        opt.zero_grad(set_to_none=True)
        loss = distributed.backward(dist, model, plan, prec, device,
                                    lambda i, sl, stage=stage, plan=plan, g=g: loss_fn(model, stage, plan.micro, g))
        if clip:
            torch.nn.utils.clip_grad_norm_(unet.parameters(), float(clip))
        opt.step()
        if after_step is not None:
            after_step(step)
        loop.log(loss=loss, stage=stage["name"])
    return loop
