"""The view HESSO's optimizer has of a network: families of zero-invariant groups.

A group is one ZIG of the shared partition (steps.nn.zig): the slices of several tensors that
go together (a conv's output filter, its BN γ/β, coupled across residual adds). A *family* is
the groups that live in the same tensors — one layer's channels, or one residual stage's coupled
channels — as the official code's `param_groups` (`num_groups` groups each). HESSO ranks the
groups of all families together (global saliency); a family never loses its last group.

    fams = families_from_partition(model, zig.partition(model, example))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Family:
    """`slices`: (parameter name, parameter, dim, index); group i of the family is entry
    index[i] along dim of each parameter. `ids`: the groups' ids in the partition."""

    name: str
    n: int
    slices: list[tuple[str, torch.nn.Parameter, int, torch.Tensor]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def check(self) -> None:
        for pname, p, dim, idx in self.slices:
            if len(idx) != self.n or int(idx.max()) >= p.shape[dim]:
                raise ValueError(f"family {self.name}: bad index into {pname} (dim {dim}, size {p.shape[dim]})")


def families_from_partition(model: torch.nn.Module, part) -> list[Family]:
    """Families of a steps.nn.zig Partition: its groups bucketed by the parameters they live in,
    in order of their first group id (so the global group order follows the partition's)."""
    params = dict(model.named_parameters())
    buckets: dict[tuple, list] = {}
    for g in part.groups:
        names = [s[0] for s in g.params]
        if len(set(names)) != len(names):
            raise ValueError(f"ZIG {g.id} has two slices of one parameter; HESSO expects one channel per tensor")
        buckets.setdefault(tuple(sorted(names)), []).append(g)
    fams = []
    for key, groups in buckets.items():
        slices = []
        for pname in key:
            dims = {d for g in groups for n, d, _ in g.params if n == pname}
            idx = torch.tensor([i for g in groups for n, _, i in g.params if n == pname], dtype=torch.long)
            slices.append((pname, params[pname], dims.pop(), idx))
        layers = sorted({layer for g in groups for layer, _ in g.channels})
        fam = Family("+".join(layers), len(groups), slices, [g.id for g in groups])
        fam.check()
        fams.append(fam)
    return fams


def matrix(t: torch.Tensor, dim: int, idx: torch.Tensor) -> torch.Tensor:
    """(n, rest): the entries idx along `dim` of a tensor, one row per group."""
    return t.index_select(dim, idx.to(t.device)).movedim(dim, 0).reshape(len(idx), -1)


def group_vectors(fam: Family, grads: bool = False) -> torch.Tensor | None:
    """(n, d) concatenation of a family's group slices (of the gradients when grads=True;
    None when a gradient is missing)."""
    parts = []
    for _, p, dim, idx in fam.slices:
        t = p.grad if grads else p.detach()
        if t is None:
            return None
        parts.append(matrix(t.detach(), dim, idx))
    return torch.cat(parts, 1)


def group_norms(families: list[Family]) -> torch.Tensor:
    """‖x_g‖₂ of every group, families concatenated in order (the global group index)."""
    return torch.cat([group_vectors(f).norm(dim=1).cpu() for f in families])


def offsets(families: list[Family]) -> list[int]:
    out, k = [], 0
    for f in families:
        out.append(k)
        k += f.n
    return out


def family_of(families: list[Family]) -> torch.Tensor:
    """Family index of every global group index."""
    return torch.cat([torch.full((f.n,), i, dtype=torch.long) for i, f in enumerate(families)])


@torch.no_grad()
def scale_groups(families: list[Family], idx: list[int] | torch.Tensor, factor: float) -> None:
    """Multiply the groups with these global indices by `factor` (0: project onto zero)."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    if idx.numel() == 0:
        return
    for f, off in zip(families, offsets(families), strict=True):
        local = idx[(idx >= off) & (idx < off + f.n)] - off
        if local.numel() == 0:
            continue
        for _, p, dim, index in f.slices:
            view = p.data.movedim(dim, 0)
            rows = index[local].to(p.device)
            if factor == 0.0:
                view[rows] = 0.0
            else:
                view[rows] *= factor


def group_sparsity(families: list[Family]) -> float:
    """Share of groups that are exactly zero."""
    norms = group_norms(families)
    return float((norms == 0).sum()) / max(1, norms.numel())
