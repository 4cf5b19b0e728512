"""The arms of the throughput benchmark (steps.oneflow.throughput): the same MLP, the same
initial weights, batches and SGD, trained under one placement either by our runtime (SBP global
tensors for dp and tp, the actor runtime for pp) or by PyTorch's own parallel training:

  dp  DistributedDataParallel (gradient buckets all-reduced by gloo during the backward)
  tp  torch.distributed.tensor.parallel: linear 1 ColwiseParallel, linear 2 RowwiseParallel
      (Megatron's MLP split, our `tp` placement), linear 3 replicated
  pp  torch.distributed.pipelining: one PipelineStage per process, ScheduleGPipe or
      Schedule1F1B over the micro-batches, the stages split like our actor runtime's

Every arm is built inside a worker of one gloo group (steps.core.spawn) and offers `step(i)`
(one SGD step on batch i, every rank) and `params()` (the full parameters, gathered outside the
timed steps; {} on ranks that hold none of them). Our MLP keeps W as [in, out]; nn.Linear keeps
weight as [out, in]: the torch arms transpose on the way in and out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from steps.oneflow import actors, mlp
from steps.oneflow.armset import TORCH_SCHEDULES
from steps.oneflow.gtensor import Ctx


def linear(w: torch.Tensor, b: torch.Tensor) -> nn.Linear:
    """An nn.Linear holding our W ([in, out]) and b."""
    lin = nn.Linear(w.shape[0], w.shape[1])
    with torch.no_grad():
        lin.weight.copy_(w.t())
        lin.bias.copy_(b)
    return lin


def sequential(init: dict[str, torch.Tensor], blocks: list[int]) -> nn.Module:
    """The MLP's blocks (actors.BLOCKS: linear+relu, linear+relu, linear, loss) as one module;
    the loss block adds nothing (the loss is the caller's), a stage of no layer is Identity."""
    layers: list[nn.Module] = []
    for i in blocks:
        if actors.BLOCKS[i] is None:
            continue
        w, b, act = actors.BLOCKS[i]
        layers.append(linear(init[w], init[b]))
        if act:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers) if layers else nn.Identity()


def ours_from_module(module: nn.Module, blocks: list[int]) -> dict[str, torch.Tensor]:
    """Our parameter names and layouts back from `sequential`'s module (plain tensors)."""
    lins = [m for m in module.modules() if isinstance(m, nn.Linear)]
    names = [actors.BLOCKS[i][:2] for i in blocks if actors.BLOCKS[i] is not None]
    out = {}
    for (w, b), lin in zip(names, lins, strict=True):
        out[w], out[b] = _full(lin.weight).t().contiguous(), _full(lin.bias).contiguous()
    return out


def _full(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's logical value (a collective), or the tensor itself."""
    full = getattr(t, "full_tensor", None)
    return (full() if full else t).detach().clone()


class Data:
    """The digits and the batch schedule every arm shares (mlp.batch_indices)."""

    def __init__(self, X, Y, seed: int, batch: int) -> None:
        self.X, self.Y, self.seed, self.batch = X, Y, seed, batch

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = mlp.batch_indices(self.seed, step, self.batch, len(self.Y))
        return self.X[idx], self.Y[idx]


class OursSbp:
    """dp, tp (or any placement of params): the SBP engine, transfers planned by the boxing planner."""

    def __init__(self, rank: int, world: int, data: Data, init, placement: dict, lr: float) -> None:
        self.data, self.placement, self.lr = data, placement, lr
        self.ctx = Ctx(mlp.mesh_of(placement, world), rank)
        self.p = mlp.sbp_params(self.ctx, placement, init)

    def step(self, i: int) -> None:
        d = self.data
        mlp.sbp_step(self.ctx, self.placement, self.p, d.X, d.Y, d.seed, i, d.batch, self.lr)
        self.ctx.records.clear()  # the byte tally is the equiv phase's; keep memory flat here

    def params(self) -> dict[str, torch.Tensor]:
        full = {k: self.ctx.to_full(v).clone() for k, v in self.p.items()}
        return full if self.ctx.rank == 0 else {}


class OursPipeline:
    """pp: the actor runtime, one stage per process, m micro-batches, register quota q."""

    def __init__(self, rank: int, world: int, data: Data, init, hidden: int, m: int, quota: int, lr: float) -> None:
        self.data, self.m, self.quota, self.lr = data, m, quota, lr
        self.stage = actors.Stage(rank, world, init, hidden, data.batch)

    def step(self, i: int) -> None:
        x, y = self.data.batch_at(i)
        self.stage.step(list(x.chunk(self.m)), list(y.chunk(self.m)), self.quota, self.lr, sync=False)
        self.stage.records.clear()

    def params(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.stage.params.items()}


class TorchDdp:
    """dp: DistributedDataParallel; rank r takes row block r of the batch (our S(0) split)."""

    def __init__(self, rank: int, world: int, data: Data, init, lr: float) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.rank, self.world, self.data = rank, world, data
        self.module = sequential(init, [0, 1, 2])
        self.model = DistributedDataParallel(self.module)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)

    def step(self, i: int) -> None:
        x, y = self.data.batch_at(i)
        x, y = x.chunk(self.world)[self.rank], y.chunk(self.world)[self.rank]
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(x), y).backward()  # DDP averages the ranks' gradients
        self.opt.step()

    def params(self) -> dict[str, torch.Tensor]:
        return ours_from_module(self.module, [0, 1, 2]) if self.rank == 0 else {}


class TorchTp:
    """tp: DTensor tensor parallelism on a 1-D device mesh of all ranks, the whole batch on each."""

    def __init__(self, rank: int, world: int, data: Data, init, lr: float) -> None:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        self.rank, self.data = rank, data
        mesh = init_device_mesh("cpu", (world,))
        self.module = parallelize_module(sequential(init, [0, 1, 2]), mesh,
                                         {"0": ColwiseParallel(), "2": RowwiseParallel()})
        self.opt = torch.optim.SGD(self.module.parameters(), lr=lr)

    def step(self, i: int) -> None:
        x, y = self.data.batch_at(i)
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.module(x), y).backward()
        self.opt.step()

    def params(self) -> dict[str, torch.Tensor]:
        full = ours_from_module(self.module, [0, 1, 2])  # full_tensor(): every rank takes part
        return full if self.rank == 0 else {}


class TorchPipeline:
    """pp: torch.distributed.pipelining, the stage split of actors.stage_blocks, a built-in schedule.
    The schedule computes the mean loss per micro-batch and divides the gradients by m
    (scale_grads): the full batch's mean gradient, as in our runtime."""

    def __init__(self, rank: int, world: int, data: Data, init, m: int, schedule: str, lr: float) -> None:
        from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

        if schedule not in TORCH_SCHEDULES:
            raise ValueError(f"unknown pipeline schedule {schedule!r}; known: {', '.join(TORCH_SCHEDULES)}")
        self.rank, self.world, self.data = rank, world, data
        self.blocks = actors.stage_blocks(rank, world)
        self.module = sequential(init, self.blocks)
        stage = PipelineStage(self.module, rank, world, torch.device("cpu"))
        cls = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[schedule]
        self.schedule = cls(stage, n_microbatches=m, loss_fn=F.cross_entropy)
        params = list(self.module.parameters())
        self.opt = torch.optim.SGD(params, lr=lr) if params else None

    def step(self, i: int) -> None:
        x, y = self.data.batch_at(i)
        if self.rank == 0:
            self.schedule.step(x)
        elif self.rank == self.world - 1:
            self.schedule.step(target=y)
        else:
            self.schedule.step()
        if self.opt is not None:
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)

    def params(self) -> dict[str, torch.Tensor]:
        return ours_from_module(self.module, self.blocks)
