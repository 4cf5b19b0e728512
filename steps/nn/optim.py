"""Adam and AdamW for small eager training loops: torch's own arithmetic (the functional
`torch.optim.adam.adam`, with decoupled weight decay for AdamW) behind a minimal optimizer with
state_dict/load_state_dict. A schedule sets `opt.lr` directly.

Why not torch.optim.Adam/AdamW: their constructor and first step import torch._dynamo (measured
1.3–1.4 s on these 2-core machines), a third of a smoke-scale training step. The numbers are
identical (tests/test_nn.py checks both step for step). Full-scale GPU code uses torch.optim.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam


class Adam:
    """torch.optim.Adam (L2 weight decay added to the gradient)."""

    decoupled_weight_decay = False

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(betas), float(eps), float(weight_decay)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.tensor(0.0) for _ in self.params]

    @torch.no_grad()
    def step(self) -> None:
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        adam(
            [self.params[i] for i in idx], [self.params[i].grad for i in idx],
            [self.exp_avg[i] for i in idx], [self.exp_avg_sq[i] for i in idx], [],
            [self.steps[i] for i in idx],
            foreach=False, capturable=False, differentiable=False, fused=None,
            grad_scale=None, found_inf=None, has_complex=False, decoupled_weight_decay=self.decoupled_weight_decay,
            amsgrad=False,
            beta1=self.betas[0], beta2=self.betas[1], lr=self.lr, weight_decay=self.weight_decay,
            eps=self.eps, maximize=False,
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def state_dict(self) -> dict:
        return {
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
            "steps": [t.clone() for t in self.steps],
            "hyper": {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay},
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["exp_avg"]) != len(self.params):
            raise ValueError(f"optimizer state has {len(state['exp_avg'])} tensors, model has {len(self.params)}")
        for dst, key in ((self.exp_avg, "exp_avg"), (self.exp_avg_sq, "exp_avg_sq"), (self.steps, "steps")):
            for d, s in zip(dst, state[key], strict=True):
                d.copy_(s)


class AdamW(Adam):
    """torch.optim.AdamW: weight decay applied to the weights, lr·λ·θ, not through the moments
    (Loshchilov & Hutter 2019). Its default λ is torch's, 0.01."""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
