"""NitroFusion's dynamic discriminator pool on the frozen SDXL teacher UNet (§3, Fig. 2).

The pool's bookkeeping — noise-level groups, the heads' global/local × conditional/unconditional
layout, the per-step subset, refresh — is the miniature's HeadPool (steps.nitrofusion.
discriminator); only the backbone and the heads differ:

* features: forward hooks on the teacher UNet's down blocks and mid block collect their outputs
  (the UNet encoder's multi-scale feature maps) for the re-noised latent x_s at the group's level,
  with the caption's conditioning (conditional heads) or SDXL's null conditioning (unconditional
  heads); the teacher is frozen, gradients reach x (the generator's update);
* global heads sit on the deepest map (mid block): 3×3 conv → SiLU → spatial mean → linear;
* local heads sit on the earlier maps (one down block each, cycling): 1×1 conv → SiLU → 1×1
  conv, one logit per location (a patch discriminator; the hinge loss averages over locations);
* conditional heads add the projection term ⟨φ(features), E·pooled text embedding⟩, per
  location for local heads.
Which hooks and head shapes the paper used is not published (training code unreleased): ours.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from steps.nitrofusion.discriminator import HeadPool, PoolSpec
from steps.nitrofusion.sdxl.models import Cond, level_to_timestep, renoise


class UNetTaps:
    """Forward hooks collecting the outputs of a UNet's down blocks and its mid block."""

    def __init__(self, unet):
        self.unet, self.out = unet, []
        self.blocks = [*unet.down_blocks, unet.mid_block]
        self.channels = [*unet.config.block_out_channels, unet.config.block_out_channels[-1]]
        for b in self.blocks:
            b.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.out.append(output[0] if isinstance(output, tuple) else output)

    def __call__(self, x: torch.Tensor, s: torch.Tensor, cond: Cond) -> list[torch.Tensor]:
        """The feature maps of the frozen UNet on (x_s, s | cond), shallow to deep."""
        self.out = []
        self.unet(x, s, **cond.kwargs())
        feats, self.out = self.out, []
        return feats


class ConvHead(nn.Module):
    """One head on one feature map (see module docstring)."""

    def __init__(self, kind: str, tap: int, channels: int, c_dim: int, hidden: int, cond: bool):
        super().__init__()
        self.kind, self.tap, self.cond = kind, tap, cond
        k = 3 if kind == "global" else 1
        self.body = nn.Sequential(nn.Conv2d(channels, hidden, k, padding=k // 2), nn.SiLU())
        self.out = nn.Linear(hidden, 1) if kind == "global" else nn.Conv2d(hidden, 1, 1)
        self.embed = nn.Linear(c_dim, hidden, bias=False) if cond else None

    def forward(self, feats: list[torch.Tensor], pooled: torch.Tensor) -> torch.Tensor:
        u = self.body(feats[self.tap].float())
        if self.kind == "global":
            u = u.mean(dim=(2, 3))
            s = self.out(u).squeeze(1)
            if self.cond:
                s = s + (u * self.embed(pooled.float())).sum(1)
            return s  # (B,)
        s = self.out(u).squeeze(1)
        if self.cond:
            s = s + (u * self.embed(pooled.float())[:, :, None, None]).sum(1)
        return s  # (B, H, W)

    @torch.no_grad()
    def reset(self, generator: torch.Generator) -> None:
        """PyTorch's default Linear / Conv2d init, drawn from `generator` (on the CPU)."""
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                m.weight.copy_(torch.empty(m.weight.shape).uniform_(-bound, bound, generator=generator))
                if m.bias is not None:
                    m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=generator))


class SDXLPool(HeadPool):
    """The head pool on a frozen SDXL UNet (`teacher`, hooked by UNetTaps)."""

    def __init__(self, spec: PoolSpec, teacher, c_dim: int, generator: torch.Generator):
        taps = UNetTaps(teacher)
        chans = taps.channels
        super().__init__(spec, 0, c_dim, len(chans), generator,
                         make_head=lambda kind, tap, cond: ConvHead(kind, tap, chans[tap], c_dim, spec.hidden, cond))
        self._taps = [taps]  # a list: not a submodule (the teacher is not part of the pool's state)

    def scores(self, ac, x0: torch.Tensor, cond: Cond, null: Cond, t: torch.Tensor, eps: torch.Tensor,
               groups: torch.Tensor, chosen: list[list[int]]) -> list[torch.Tensor]:
        """Scores of the chosen heads, each on the rows of its group: x0 re-noised to the rows'
        levels t (s = round((1 − t)·999)), the teacher's features with the caption and, if an
        unconditional head is chosen, with the null conditioning."""
        taps = self._taps[0]
        s = level_to_timestep(t).to(x0.device)
        xs = renoise(ac, x0, s, eps)
        f_cond = taps(xs, s, cond)
        need_null = any(not self.heads[i].cond for ids in chosen for i in ids)
        f_null = taps(xs, s, null) if need_null else None
        out = []
        for g, ids in enumerate(chosen):
            if not ids:
                continue
            rows = (groups == g).nonzero().squeeze(1).to(x0.device)
            sub = {True: [f.index_select(0, rows) for f in f_cond], False: None}
            if f_null is not None:
                sub[False] = [f.index_select(0, rows) for f in f_null]
            pooled = cond.pooled.index_select(0, rows)
            out += [self.heads[i](sub[self.heads[i].cond], pooled) for i in ids]
        return out
