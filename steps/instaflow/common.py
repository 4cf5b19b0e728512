"""What InstaFlow's miniature phases share: artifact names, loading the captioned digits,
building and (re)loading flows, and the resumable flow-training loop."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import checkpoint, distributed, seeding
from steps.core.io import load_npz
from steps.nn import rectified_flow as rf
from steps.nn import velocity
from steps.nn.optim import Adam

FLOWS = ("rf1", "rf2")  # 1-rectified flow (teacher), 2-rectified flow (after reflow)


# Artifact names inside data/instaflow and models/instaflow; the rules use the same functions.
def flow_path(models_dir, flow: str, seed: int) -> Path:
    return Path(models_dir) / f"{flow}_s{seed}.pt"


def student_path(models_dir, teacher: str, seed: int) -> Path:
    return Path(models_dir) / f"distill_{teacher}_s{seed}.pt"


def pairs_path(data_dir, flow: str, seed: int) -> Path:
    return Path(data_dir) / f"pairs_{flow}_s{seed}.npz"


class CaptionedDigits:
    """Images (N, 64), their caption ids (N,), and caption embeddings (C, 384) as tensors."""

    def __init__(self, digits_path, emb_path):
        d = load_npz(digits_path, "digits dataset")
        e = load_npz(emb_path, "caption embeddings")
        self.x = torch.from_numpy(d["images"])
        self.labels = torch.from_numpy(d["labels"])
        self.caption_id = torch.from_numpy(d["caption_id"])
        self.emb = torch.from_numpy(e["embedding"])
        self.null = torch.zeros(1, self.emb.shape[1])

    @property
    def x_dim(self) -> int:
        return self.x.shape[1]

    @property
    def c_dim(self) -> int:
        return self.emb.shape[1]

    def cond(self, caption_id: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Caption embeddings for ids; rows where `drop` is true get the null caption (zeros)."""
        c = self.emb[caption_id]
        return c if drop is None else torch.where(drop[:, None], torch.zeros_like(c), c)


def new_flow(cfg: DictConfig, x_dim: int, c_dim: int) -> torch.nn.Module:
    return velocity.build(cfg.model, x_dim, c_dim)


def save_flow(path, cfg: DictConfig, model: torch.nn.Module, step: int, **extra) -> None:
    """A finished flow: weights, the architecture to rebuild it, and the producing config."""
    meta = {"x_dim": model.x_dim, "c_dim": model.c_dim, "model": OmegaConf.to_container(cfg.model), **extra}
    checkpoint.save(path, cfg, step, model=model, meta=meta)


def load_flow(path, what: str = "flow checkpoint") -> torch.nn.Module:
    payload = checkpoint.load(path, what)
    meta = payload["state"]["meta"]
    model = velocity.build(OmegaConf.create(meta["model"]), meta["x_dim"], meta["c_dim"])
    model.load_state_dict(payload["state"]["model"])
    return model.eval()


def train_flow(cfg: DictConfig, section: DictConfig, model, out, seed: int, batch_fn, desc: str, rt, save=None) -> int:
    """Minimise the rectified-flow loss with Adam; `batch_fn(step, generator)` returns the
    step's whole global batch (x0, x1, c) of `section.batch` rows, drawn alike on every rank.
    Data-parallel over the processes of the job (steps.core.distributed: each rank takes its
    slice, in micro-batches of `section.micro_batch`, in `section.precision`). Resumable
    (checkpoint.TrainLoop); rank 0 writes the output with `save(out, cfg, model, steps, **meta)`
    (default save_flow, for VelocityMLP flows); returns the number of steps run."""
    dist, dev = rt.dist, rt.device
    model.to(dev)
    prec = distributed.precision(section.get("precision"), dev)
    plan = distributed.batch_plan(int(section.batch), section.get("micro_batch"), dist.world)
    wrapped = dist.wrap(model)
    opt = Adam(model.parameters(), lr=float(section.lr))
    loop = checkpoint.TrainLoop(cfg, out, int(section.steps), desc, dist, model=model, optimizer=opt)
    loop.describe(precision=prec, **plan.record())
    for step in loop:
        g = seeding.step_generator(seed, desc, step)
        x0, x1, c = batch_fn(step, g)
        t = torch.rand(x0.shape[0], generator=g)

        def micro_loss(i, sl, x0=x0, x1=x1, c=c, t=t):
            return rf.rf_loss(wrapped, x0[sl].to(dev), x1[sl].to(dev), c[sl].to(dev), t[sl].to(dev))

        opt.zero_grad(set_to_none=True)
        loss = distributed.backward(dist, wrapped, plan, prec, dev, micro_loss)
        opt.step()
        loop.log(loss=loss)
    if dist.main:
        (save or save_flow)(out, cfg, model, int(section.steps), seed=seed, train=loop.record())
    loop.finish()
    return int(section.steps)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    m = copy.deepcopy(model)
    for p in m.parameters():
        p.requires_grad_(False)
    return m.eval()
