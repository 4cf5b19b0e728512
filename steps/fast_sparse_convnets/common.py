"""Shared by the training phases: data, the optimiser schedule, one resumable training run."""

from __future__ import annotations

import math

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import seeding
from steps.core.checkpoint import TrainLoop
from steps.core.errors import ConfigError

PAPER = "fast_sparse_convnets"


def fmt_width(w: float) -> str:
    """A width multiplier as it appears in file names (0.5, 1, 1.5)."""
    return f"{float(w):g}"


class InMemory:
    """A split held as tensors (Fashion-MNIST); `get(idx)` is a minibatch."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.y)

    def get(self, idx, step: int = 0):
        return self.x[idx], self.y[idx]


def load_data(cfg: DictConfig, split: str):
    """A split with len() and get(idx, step) -> (x, y): Fashion-MNIST (smoke, mini) or an
    ImageNet-layout image folder decoded per minibatch (full)."""
    d = cfg.data
    n = d.get(f"n_{split}")
    n = int(n) if n is not None else None
    if d.source == "fashion_mnist":
        from steps.data import fashion_mnist

        return InMemory(*fashion_mnist.load(split, n=n, size=int(d.size), seed=int(d.seed)))
    if d.source == "image_folder":
        from steps.data import imagenet

        return imagenet.Folder(d, split, n, int(d.seed))
    raise ConfigError(f"data.source must be fashion_mnist or image_folder, got {d.source!r}")


def steps_per_epoch(n: int, batch: int) -> int:
    return int(math.ceil(n / batch))


def lr_at(cfg: DictConfig, step: int, total: int) -> float:
    """Cosine decay from train.lr to 0 over the whole run (dense and pruned runs share it)."""
    return float(cfg.train.lr) * 0.5 * (1.0 + math.cos(math.pi * step / max(1, total)))


def batch_indices(seed: int, n: int, batch: int, step: int) -> torch.Tensor:
    """The minibatch of a global step: epoch-wise permutations drawn from (seed, epoch) only, so
    a resumed or continued run draws what the uninterrupted run drew."""
    return next(seeding.epoch_batches(n, batch, seed, step, "perm"))[1]


def minibatches(cfg: DictConfig, data, seed: int, batch: int, start_step: int):
    """Training minibatches (x, y) of global steps start_step, start_step + 1, ... In memory
    (smoke, mini): data.get(indices) of seeding.epoch_batches (as batch_indices). An image folder (full) with threads > 1: streamed
    by threads − 1 DataLoader decode workers (steps.data.imagenet.stream with the same epoch
    permutations, so the same images in the same order; augmentation drawn per (seed, epoch,
    image)) — one process cannot decode ImageNet as fast as a GPU trains a MobileNet."""
    workers = int(cfg.threads) - 1
    if hasattr(data, "decoded") and workers > 0:
        from steps.data import imagenet

        yield from imagenet.stream(data.decoded(), seed, batch, start_step, workers,
                                   pin=str(cfg.device).startswith("cuda"), order="perm")
        return
    for step, (_, idx) in enumerate(seeding.epoch_batches(len(data), batch, seed, start_step, "perm"), start_step):
        yield data.get(idx, step)


def optimizer(cfg: DictConfig, model: torch.nn.Module):
    """Adam with L2 weight decay (steps.nn.optim: torch's Adam arithmetic without the ≈ 1 s
    torch._dynamo import that torch.optim's first step costs)."""
    from steps.nn.optim import Adam

    return Adam(model.parameters(), lr=float(cfg.train.lr), weight_decay=float(cfg.train.weight_decay))


def train(cfg: DictConfig, model, opt, data, out, first: int, last: int, total: int, seed: int,
          on_step=None, desc: str | None = None, device=None, **state) -> TrainLoop:
    """Train global steps [first, last) of a `total`-step cosine schedule, resumable.
    `on_step(step)` runs before each step's forward pass (the pruning schedule), and again
    after the optimiser step with after=True (re-applying masks)."""
    loop = TrainLoop(cfg, out, total=last - first, desc=desc, model=model, optimizer=opt, **state)
    model.train()
    batch = int(cfg.train.batch)
    batches = minibatches(cfg, data, seed, batch, first + loop.start)
    for i in loop:
        step = first + i
        opt.lr = lr_at(cfg, step, total)
        if on_step is not None:
            on_step(step, after=False)
        xb, yb = next(batches)
        if device is not None:
            xb, yb = xb.to(device), yb.to(device)
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, after=True)
        loop.log(loss=float(loss.detach()))
    batches.close()  # a streamed source: stop its decode workers
    return loop


@torch.no_grad()
def accuracy(model, data, batch: int = 1000, device=None) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(data), batch):
        xb, yb = data.get(torch.arange(i, min(i + batch, len(data))))
        if device is not None:
            xb, yb = xb.to(device), yb.to(device)
        correct += int((model(xb).argmax(1) == yb).sum())
    return correct / len(data)


def set_device(cfg: DictConfig, device: str | None = None):
    """(torch.device, description): training follows cfg.device (a GPU at full scale)."""
    from steps.core.device import setup

    return setup(device or str(cfg.device), int(cfg.threads))


def seed_all(seed: int) -> None:
    seeding.seed_everything(seed)
    np.random.seed(seed)


def key(x: float) -> str:
    """A number as part of a metric key: 0.75 → 0_75."""
    return f"{float(x):g}".replace(".", "_")


def dense_name(width: float) -> str:
    return f"dense_w{fmt_width(width)}"


def sparse_name(width: float, sparsity: float, block: int) -> str:
    return f"sparse_w{fmt_width(width)}_s{float(sparsity):g}_b{int(block)}"


def arms(cfg: DictConfig) -> list[dict]:
    """Every model of the frontier: its file stem, metric key and what it is."""
    out = [{"file": dense_name(w), "key": f"dense_w{key(w)}", "width": float(w), "sparsity": 0.0, "block": 0}
           for w in cfg.model.widths]
    out += [{"file": sparse_name(w, s, b), "key": f"sparse_w{key(w)}_s{key(s)}_b{int(b)}", "width": float(w),
             "sparsity": float(s), "block": int(b)}
            for w in cfg.prune.widths for s in cfg.prune.sparsities for b in cfg.prune.blocks]
    return out
