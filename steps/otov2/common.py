"""What every otov2 phase shares: the runs (arm × sparsity), the data, the model."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

ARMS = ("dense", "dhspg", "lasso", "random")


def run_name(arm: str, sparsity: float) -> str:
    return f"{arm}_s{int(round(float(sparsity) * 100))}"


def runs(cfg: DictConfig) -> list[tuple[str, float]]:
    """Every (arm, target group sparsity) trained at this scale; the dense reference has 0."""
    out = [("dense", 0.0)] if cfg.runs.dense else []
    for arm in cfg.runs.arms:
        if arm not in ARMS[1:]:
            raise ValueError(f"unknown otov2 arm {arm!r}: use {', '.join(ARMS[1:])}")
        out += [(arm, float(s)) for s in cfg.runs.sparsities]
    return out


def parse_run(name: str) -> tuple[str, float]:
    arm, _, s = name.rpartition("_s")
    return arm, int(s) / 100


def data(cfg: DictConfig, split: str):
    """(x, y) torch tensors of Fashion-MNIST (the shared loader), subset and size from params."""
    import torch

    from steps.data import fashion_mnist

    n = int(cfg.data.n_train if split == "train" else cfg.data.n_test)
    x, y = fashion_mnist.load(split, n=n, size=int(cfg.data.size), seed=int(cfg.data.seed))
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)


def model(cfg: DictConfig):
    from steps.nn.demo_resnet import DemoResNet

    return DemoResNet(tuple(cfg.model.widths), in_channels=1, classes=10)


def accuracy(net, x, y, batch: int = 1000) -> float:
    import torch

    was = net.training
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    net.train(was)
    return correct / len(x)
