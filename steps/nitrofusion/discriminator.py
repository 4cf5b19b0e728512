"""NitroFusion's dynamic discriminator (§3, Fig. 2): a frozen teacher backbone extracts features of
re-noised real and fake images at a noise level t; a large pool of lightweight heads sits on top,
organised in groups by t-range (each group only sees its range), by scale (global heads on the
deepest, pooled features; "local" heads on early-layer features) and by conditioning
(conditional heads also see the caption through a projection, unconditional heads see features
computed with the null caption). Each step samples a few heads per group; a refresh
re-initialises a small share of the pool now and then so no head overfits.

Miniature stand-in: the backbone is InstaFlow's 1-RF VelocityMLP (frozen). It has no spatial
tokens, so "local" heads are linear heads on its first or second hidden layer (early, less
aggregated features) and "global" heads small MLPs on its last hidden layer — the prototype's
choice, named as a stand-in in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from steps.nn.velocity import VelocityMLP, sinusoidal


def taps(backbone: VelocityMLP, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
    """The hidden activations (after each SiLU) of a VelocityMLP on (x_t, t, c): the frozen
    teacher's features. Gradients flow to x (the generator's update) but the backbone is frozen."""
    h = torch.cat([x, sinusoidal(t, backbone.t_dim), backbone.cond(c)], dim=1)
    out = []
    for layer in backbone.net:
        h = layer(h)
        if isinstance(layer, nn.SiLU):
            out.append(h)
    return out


class Head(nn.Module):
    """One discriminator head: a real/fake score from one feature tap, optionally conditional
    (projection discriminator, Miyato & Koyama 2018: + ⟨φ(f), E·c⟩)."""

    def __init__(self, kind: str, tap: int, feat_dim: int, c_dim: int, hidden: int, cond: bool):
        super().__init__()
        self.kind, self.tap, self.cond = kind, tap, cond
        if kind == "global":
            self.body = nn.Sequential(nn.Linear(feat_dim, hidden), nn.SiLU())
            self.out = nn.Linear(hidden, 1)
            proj_in = hidden
        else:  # local: linear on early features
            self.body = nn.Identity()
            self.out = nn.Linear(feat_dim, 1)
            proj_in = feat_dim
        self.proj = nn.Linear(proj_in, hidden, bias=False) if cond and kind == "local" else None
        self.embed = nn.Linear(c_dim, hidden, bias=False) if cond else None

    def forward(self, feats: list[torch.Tensor], c: torch.Tensor) -> torch.Tensor:
        u = self.body(feats[self.tap])
        s = self.out(u).squeeze(1)
        if self.cond:
            phi = u if self.proj is None else self.proj(u)
            s = s + (phi * self.embed(c)).sum(1)
        return s

    @torch.no_grad()
    def reset(self, generator: torch.Generator) -> None:
        """Re-initialise every parameter (PyTorch's default Linear init, from `generator`)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=generator)


@dataclass(frozen=True)
class PoolSpec:
    """The pool's shape: t-ranges of the groups, heads per group, heads sampled per group and step,
    whether local heads exist, and the refresh schedule (share of the pool every `refresh_every`)."""

    ranges: tuple[tuple[float, float], ...]
    heads_per_group: int
    per_step: int
    local: bool
    refresh_share: float
    refresh_every: int  # 0 = never
    hidden: int = 32

    @staticmethod
    def from_cfg(disc, arm) -> PoolSpec:
        ranges = tuple((float(a), float(b)) for a, b in disc.groups)
        if arm.single_range:  # one group spanning every noise level (ADD-like single discriminator)
            ranges = ((min(r[0] for r in ranges), max(r[1] for r in ranges)),)
        return PoolSpec(ranges, int(arm.heads_per_group), int(arm.per_step), bool(arm.local),
                        float(disc.refresh.share), int(disc.refresh.every) if arm.refresh else 0, int(disc.hidden))

    def refresh_count(self) -> int:
        return max(1, round(self.refresh_share * len(self.ranges) * self.heads_per_group))


def layout(n: int, local: bool) -> list[tuple[str, bool]]:
    """(kind, conditional) of the n heads of one group: half global, half local (all global
    without local heads); half of each kind conditional. Head 0 is always global conditional."""
    n_global = n if not local else n - n // 2
    kinds = ["global"] * n_global + ["local"] * (n - n_global)
    out = []
    for kind in ("global", "local"):
        m = kinds.count(kind)
        out += [(kind, i < m - m // 2) for i in range(m)]
    return out


class HeadPool(nn.Module):
    """groups × heads_per_group heads on a frozen backbone's taps (see module docstring).
    `make_head(kind, tap, cond)` builds one head (default: the miniature's Head); global heads
    sit on the last tap, local heads cycle over the earlier ones. Heads need reset(generator)."""

    def __init__(self, spec: PoolSpec, feat_dim: int, c_dim: int, n_taps: int, generator: torch.Generator,
                 make_head=None):
        super().__init__()
        self.spec = spec
        if make_head is None:
            def make_head(kind, tap, cond):
                return Head(kind, tap, feat_dim, c_dim, spec.hidden, cond)
        heads = []
        for _ in spec.ranges:
            for j, (kind, cond) in enumerate(layout(spec.heads_per_group, spec.local)):
                tap = n_taps - 1 if kind == "global" else j % max(1, n_taps - 1)
                heads.append(make_head(kind, tap, cond))
        self.heads = nn.ModuleList(heads)
        for h in self.heads:
            h.reset(generator)

    def group_of(self, i: int) -> int:
        return i // self.spec.heads_per_group

    def sample(self, generator: torch.Generator) -> list[list[int]]:
        """Per group, `per_step` distinct head indices drawn uniformly (the dynamic subset)."""
        k, n = self.spec.per_step, self.spec.heads_per_group
        return [[g * n + int(j) for j in torch.randperm(n, generator=generator)[:k]] for g in range(len(self.spec.ranges))]

    def draw_t(self, groups: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A noise level per row, uniform in the t-range of the row's group."""
        lo = torch.tensor([r[0] for r in self.spec.ranges])[groups]
        hi = torch.tensor([r[1] for r in self.spec.ranges])[groups]
        return lo + (hi - lo) * torch.rand(len(groups), generator=generator)

    def scores(self, backbone, x, c, null, t, eps, groups, chosen: list[list[int]]) -> list[torch.Tensor]:
        """Scores of the chosen heads, each on the rows of its group: x is re-noised to
        x_t = t·x + (1 − t)·ε (rectified-flow convention, t = 1 is clean) and passed through the
        frozen backbone with the caption (conditional heads) or the null caption (unconditional)."""
        xt = t[:, None] * x + (1.0 - t[:, None]) * eps
        need_null = any(not self.heads[i].cond for ids in chosen for i in ids)
        f_cond = taps(backbone, xt, t, c)
        f_null = taps(backbone, xt, t, null.expand_as(c)) if need_null else None
        out = []
        for g, ids in enumerate(chosen):
            if not ids:
                continue
            rows = (groups == g).nonzero().squeeze(1)
            sub = {True: [f.index_select(0, rows) for f in f_cond], False: None}
            if f_null is not None:
                sub[False] = [f.index_select(0, rows) for f in f_null]
            c_rows = c.index_select(0, rows)
            for i in ids:
                h = self.heads[i]
                out.append(h(sub[h.cond], c_rows))
        return out

    @torch.no_grad()
    def checksums(self) -> list[float]:
        return [float(sum(p.double().sum() + p.double().abs().sum() for p in h.parameters())) for h in self.heads]

    def refresh(self, generator: torch.Generator, optimizer) -> list[int]:
        """Re-initialise `refresh_count` heads drawn uniformly from the whole pool and clear their
        optimiser state (a fresh critic, §3 "refresh"); returns their indices."""
        k = self.spec.refresh_count()
        ids = sorted(int(i) for i in torch.randperm(len(self.heads), generator=generator)[:k])
        for i in ids:
            self.heads[i].reset(generator)
            if optimizer is not None:
                reset_adam_state(optimizer, list(self.heads[i].parameters()))
        return ids


def reset_adam_state(opt, params: list[torch.nn.Parameter]) -> None:
    """Zero the moments and step counts of `params` in a steps.nn.optim.Adam, or drop their
    state in a torch.optim optimiser (it is rebuilt, fresh, at the next step)."""
    if isinstance(opt, torch.optim.Optimizer):
        for p in params:
            opt.state.pop(p, None)
        return
    ids = {id(p) for p in params}
    for k, p in enumerate(opt.params):
        if id(p) in ids:
            opt.exp_avg[k].zero_()
            opt.exp_avg_sq[k].zero_()
            opt.steps[k].zero_()


def hinge_d(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator hinge loss, mean over the chosen heads: relu(1 − D(real)) + relu(1 + D(fake))."""
    return torch.stack([F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)]).mean()


def hinge_g(fake: list[torch.Tensor]) -> torch.Tensor:
    """Generator hinge loss, mean over the chosen heads: −D(fake)."""
    return torch.stack([-f.mean() for f in fake]).mean()
