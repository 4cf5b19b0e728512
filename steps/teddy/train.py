"""One full-batch GCN training run, as the official TEDDY code trains every model: Adam (lr,
weight decay), `epochs` epochs, cross-entropy on the labelled nodes, optionally + λ·KD to the dense
teacher's logits and the ℓ0 projection after every optimizer step; the model kept is the one of the
best validation accuracy (ties go to the later epoch, `>=` as the code), its test accuracy reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from steps.nn import gcn
from steps.nn.optim import Adam
from steps.teddy import mechanism


@dataclass
class Graph:
    """A node-classification graph as torch tensors (see steps.data.csbm.generate for the keys)."""

    x: torch.Tensor
    y: torch.Tensor
    edges: np.ndarray
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    @classmethod
    def from_arrays(cls, a: dict) -> Graph:
        t = {k: torch.as_tensor(a[k]) for k in ("x", "y", "train", "val", "test")}
        return cls(t["x"].float(), t["y"].long(), np.asarray(a["edges"]), t["train"].long(), t["val"].long(), t["test"].long())

    def to(self, device) -> Graph:
        return Graph(self.x.to(device), self.y.to(device), self.edges, self.train.to(device), self.val.to(device),
                     self.test.to(device))

    @property
    def device(self):
        return self.x.device

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def classes(self) -> int:
        return int(self.y.max()) + 1


def accuracy(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> float:
    return float((logits[idx].argmax(-1) == y[idx]).float().mean())


def new_model(g: Graph, model_cfg, seed: int) -> gcn.GCN:
    torch.manual_seed(seed)
    model = gcn.GCN(g.x.shape[1], int(model_cfg.hidden), g.classes, int(model_cfg.layers), float(model_cfg.dropout))
    return model.to(g.device)


def fit(
    g: Graph,
    model: gcn.GCN,
    adj: gcn.Adjacency,
    train_cfg,
    seed: int,
    teacher: torch.Tensor | None = None,
    kd_lambda: float = 0.0,
    weight_sparsity: float = 0.0,
    weight_masks: list[torch.Tensor] | None = None,
) -> dict:
    """Train `model` in place; returns {val, test, epoch, logits (best-val, eval mode), wall_s,
    state (best-val weights)}. `weight_sparsity` > 0: ℓ0 projection of all parameters after every
    step (TEDDY); `weight_masks`: fixed 0/1 masks, one per layer (random and UGS arms)."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    params = list(model.parameters())
    opt = Adam(params, lr=float(train_cfg.lr), weight_decay=float(train_cfg.weight_decay))  # torch's arithmetic, no dynamo import
    best = {"val": -1.0, "test": 0.0, "epoch": -1, "logits": None, "state": None}
    if weight_masks is not None:
        with torch.no_grad():
            for p, m in zip(params, weight_masks, strict=True):
                p.mul_(m)
    for epoch in range(int(train_cfg.epochs)):
        model.train()
        opt.zero_grad(set_to_none=True)
        out = model(g.x, adj)
        loss = F.cross_entropy(out[g.train], g.y[g.train])
        if teacher is not None and kd_lambda > 0:
            loss = loss + kd_lambda * mechanism.kd_loss(out, teacher)
        loss.backward()
        opt.step()
        with torch.no_grad():
            if weight_sparsity > 0:
                mechanism.l0_project(params, weight_sparsity)
            if weight_masks is not None:
                for p, m in zip(params, weight_masks, strict=True):
                    p.mul_(m)
            model.eval()
            logits = model(g.x, adj)
        val = accuracy(logits, g.y, g.val)
        if val >= best["val"]:
            best.update(val=val, test=accuracy(logits, g.y, g.test), epoch=epoch, logits=logits,
                        state={k: v.clone() for k, v in model.state_dict().items()})
    best["wall_s"] = time.perf_counter() - t0
    return best


def weight_sparsity(model: gcn.GCN) -> float:
    total = sum(p.numel() for p in model.parameters())
    return 1.0 - sum(int(torch.count_nonzero(p)) for p in model.parameters()) / total
