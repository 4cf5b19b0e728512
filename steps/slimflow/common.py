"""What SlimFlow's phases share: artifact names, the teacher's pairs, building and (re)loading
small students, and one resumable training loop with an EMA (every arm trains through it, so
the arms differ only in what they feed it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import checkpoint, distributed, seeding
from steps.core.io import load_npz
from steps.instaflow.common import frozen_copy
from steps.nn import rectified_flow as rf
from steps.nn.optim import Adam
from steps.nn.velocity import n_params
from steps.slimflow.images import build_model

REFLOW_ARMS = ("scratch", "standard", "anneal", "independent")
DISTILL_ARMS = ("naive", "fgd")


def flow_path(models_dir, arm: str, seed: int) -> Path:
    """A small 2-flow of one reflow arm (models/slimflow/2rf_small_<arm>_s<seed>.pt)."""
    return Path(models_dir) / f"2rf_small_{arm}_s{seed}.pt"


def student_path(models_dir, arm: str, seed: int) -> Path:
    """A small one-step student of one distillation arm (models/slimflow/student_<arm>_s<seed>.pt)."""
    return Path(models_dir) / f"student_{arm}_s{seed}.pt"


class Pairs:
    """The teacher's coupled pairs (z0, x1 = ODE[teacher](z0 | c), caption id) as tensors."""

    def __init__(self, path):
        d = load_npz(path, "teacher pairs")
        self.z = torch.from_numpy(d["z"])
        self.x1 = torch.from_numpy(d["x1"])
        self.caption_id = torch.from_numpy(d["caption_id"])

    def __len__(self) -> int:
        return len(self.z)


def new_student(cfg: DictConfig, data) -> torch.nn.Module:
    """A randomly initialised small velocity network from `cfg.model` (the student) for `data`
    (its sample shape and condition width)."""
    model = build_model(cfg.model, data.shape, data.c_dim)
    model.sample_shape = tuple(data.shape)
    return model


def save_model(path, cfg: DictConfig, model: torch.nn.Module, step: int, snapshots: dict | None = None, **extra) -> None:
    """A finished model: its EMA weights (`model`), optional named EMA snapshots, the architecture
    to rebuild it (model config, sample shape, condition width) and the producing config."""
    meta = {"shape": list(model.sample_shape), "c_dim": model.c_dim, "model": OmegaConf.to_container(cfg.model),
            "params": n_params(model), **extra}
    checkpoint.save(path, cfg, step, model=model, snapshots=snapshots or {}, meta=meta)


def load_model(path, what: str = "SlimFlow checkpoint", snapshot: str | None = None) -> torch.nn.Module:
    """A model written by `save_model` (its final EMA weights, or a named snapshot), in eval mode."""
    payload = checkpoint.load(path, what)
    state = payload["state"]
    meta = state["meta"]
    shape = tuple(meta["shape"]) if "shape" in meta else (int(meta["x_dim"]),)  # x_dim: before images
    model = build_model(OmegaConf.create(meta["model"]), shape, int(meta["c_dim"]))
    model.sample_shape = shape
    model.load_state_dict(state["snapshots"][snapshot] if snapshot else state["model"])
    return model.eval()


def train(cfg: DictConfig, section: DictConfig, model: torch.nn.Module, out, seed: int, desc: str, rt,
          batch_fn: Callable, loss_fn: Callable, snapshot_steps: dict[str, int] | None = None,
          meta: dict | None = None, stream: str | None = None) -> dict:
    """Adam on `loss_fn(net, micro_batch, step) -> (loss, stats)` over the global batches that
    `batch_fn(step, generator) -> {name: tensor}` draws (`section.batch` rows, alike on every
    rank), with an EMA of the weights (decay `section.ema`, warm-up as InstaFlow's distillation).
    The EMA is what gets saved; `snapshot_steps` names EMA snapshots taken after a step count.
    Randomness comes from the stream `stream` (default `desc`): arms that share a stream draw the
    same batches. Resumable (checkpoint.TrainLoop); data-parallel over the job's processes."""
    dist, dev = rt.dist, rt.device
    model.train().to(dev)
    ema = frozen_copy(model)
    wrapped = dist.wrap(model)
    opt = Adam(model.parameters(), lr=float(section.lr))
    prec = distributed.precision(section.get("precision"), dev)
    plan = distributed.batch_plan(int(section.batch), section.get("micro_batch"), dist.world)
    snaps = checkpoint.Snapshots()
    total = int(section.steps)
    loop = checkpoint.TrainLoop(cfg, out, total, desc, dist, model=model, optimizer=opt, ema=ema, snapshots=snaps)
    loop.describe(precision=prec, **plan.record())
    decay, warm = float(section.ema), bool(section.ema_warmup)
    for step in loop:
        g = seeding.step_generator(seed, stream or desc, step)
        batch = batch_fn(step, g)
        parts: dict = {}

        def micro_loss(i, sl, batch=batch, step=step, parts=parts):
            loss, stats = loss_fn(wrapped, {k: v[sl].to(dev) for k, v in batch.items()}, step)
            parts.update(stats)
            return loss

        opt.zero_grad(set_to_none=True)
        loss = distributed.backward(dist, wrapped, plan, prec, dev, micro_loss)
        opt.step()
        rf.ema_update(ema, model, rf.ema_decay(decay, step, warm))
        loop.log(loss=loss, **parts)
        for name, at in (snapshot_steps or {}).items():
            if step + 1 == at:
                snaps[name] = {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}
    record = loop.record()
    if dist.main:
        save_model(out, cfg, ema.cpu(), total, dict(snaps), seed=seed, train=record, **(meta or {}))
    loop.finish()
    return record
