"""SGD with heavy-ball momentum and L2 weight decay (torch.optim.SGD's arithmetic with dampening
0, no Nesterov: buf ← μ·buf + (∇f + wd·x), x ← x − lr·buf), as a plain class: torch.optim's
first step imports torch._dynamo (≈ 1.3 s here, steps/nn/optim.py), a tenth of a smoke run.
It is also the exact direction DHSPG (steps.nn.dhspg) uses, so every arm steps alike."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class SGD:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.buf = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for p, b in zip(self.params, self.buf, strict=True):
            if p.grad is None:
                continue
            d = p.grad + self.weight_decay * p if self.weight_decay else p.grad
            b.mul_(self.momentum).add_(d)
            p.sub_(self.lr * b)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"lr": self.lr, "buf": [b.clone() for b in self.buf]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["buf"]) != len(self.buf):
            raise ValueError("SGD state does not match the parameters")
        self.lr = float(state["lr"])
        for b, s in zip(self.buf, state["buf"], strict=True):
            b.copy_(s)
