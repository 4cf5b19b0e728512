"""Zero-invariant groups (ZIGs) of a network, the compact subnetwork they define, and the check
that the two compute the same function. Shared by otov2 (OTOv2's automatic ZIG partition) and
hesso (HESSO/OTOv3 prune the same groups).

A ZIG is a set of parameter slices that must be removed together: the output channel c of a
convolution or linear layer (its weight row and bias entry), the entries of every channel-wise
layer that channel passes through (BatchNorm γ/β, a depthwise convolution's filter), and — once
removed — the matching input column of every layer that reads the channel. Layers joined by a
residual add must keep the same channels, so their channels are coupled: channel c of every
summand lies in one ZIG. A channel concat keeps each branch's channels apart. When every
parameter of a ZIG is exactly zero the channel it produces is exactly zero everywhere, so the
channel and the consumers' input columns can be deleted without changing the output.

    from steps.nn import zig
    part = zig.partition(model, example)             # torch.fx trace + union-find over channels
    part.num_groups, part.groups[0].params           # [(param name, dim, index), ...]
    gi = zig.GroupIndex(model, part)                 # vectorised per-group norms and masks
    compact = zig.construct_subnet(model, part)      # removes every all-zero group
    zig.max_abs_diff(model, compact, x)              # equivalence check (eval mode)

How the partition is traced (torch.fx symbolic trace + shape propagation): every tensor carries
one key per channel (dim 1; the last dim of a 2-D tensor is dim 1 too). A conv (groups=1) or
linear layer makes fresh keys for its outputs; channel-wise layers, zero-preserving activations
and pooling pass keys through; `add`/`sub`/`mul` of two tensors unite their keys position by
position (union-find); `cat` on dim 1 concatenates them; flatten repeats each channel's key
over its spatial positions. Whatever the tracer does not understand (an unknown module or
function, a constant added to a tensor, the model input and output) marks the channels it
touches as fixed: their groups are never pruned, so the partition errs on the safe side.
"""

from __future__ import annotations

import copy
import math
import operator
from dataclasses import dataclass, field

import torch
from torch import nn

Slice = tuple[str, int, int]  # (parameter or buffer name, dim, index along dim)


@dataclass
class Group:
    """One zero-invariant group.

    id: position in Partition.groups; channels: the (layer name, output channel) pairs that the
    group's producers emit (coupled by residual adds); params: the slices that define the group
    (producer weight rows and bias entries, BatchNorm γ/β, depthwise filters) — the variables an
    optimizer penalises and zeroes; consumers: the input-column slices of layers that read the
    group's channels, deleted with it when the compact network is built (not penalised)."""

    id: int
    channels: list[tuple[str, int]] = field(default_factory=list)
    params: list[Slice] = field(default_factory=list)
    consumers: list[Slice] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "channels": [list(c) for c in self.channels],
                "params": [list(s) for s in self.params], "consumers": [list(s) for s in self.consumers]}


@dataclass
class Layer:
    """How one traced layer touches the partition: kind 'linear' (conv with groups=1 or Linear:
    in_keys for its input columns, out_keys for its output rows) or 'channelwise' (BatchNorm,
    depthwise conv: one key per channel, in_keys == out_keys). A key is a group id, or -1 for a
    fixed channel that is never pruned."""

    name: str
    kind: str
    in_keys: list[int]
    out_keys: list[int]


@dataclass
class Partition:
    groups: list[Group]
    layers: dict[str, Layer]
    fixed_channels: int  # produced channels that are not prunable (feed the output, unknown ops)

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def to_dict(self) -> dict:
        return {
            "num_groups": self.num_groups,
            "fixed_channels": self.fixed_channels,
            "groups": [g.to_dict() for g in self.groups],
            "layers": {n: {"kind": layer.kind, "in_keys": layer.in_keys, "out_keys": layer.out_keys}
                       for n, layer in self.layers.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Partition:
        groups = [Group(g["id"], [tuple(c) for c in g["channels"]], [tuple(s) for s in g["params"]],
                        [tuple(s) for s in g["consumers"]]) for g in d["groups"]]
        layers = {n: Layer(n, v["kind"], list(v["in_keys"]), list(v["out_keys"])) for n, v in d["layers"].items()}
        return cls(groups, layers, int(d["fixed_channels"]))

    def summary(self) -> dict:
        sizes = [len(g.channels) for g in self.groups]
        return {"num_groups": self.num_groups, "fixed_channels": self.fixed_channels,
                "coupled_groups": sum(s > 1 for s in sizes), "max_coupling": max(sizes, default=0)}


class UnsupportedModel(ValueError):
    """The tracer met a construct it cannot partition safely (a module called twice)."""


# ---------------------------------------------------------------------------------------------
# Tracing

_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardswish, nn.ELU, nn.Mish,
    nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
)
_PASS_NAMES = {  # functions/methods f with f(0) = 0 acting channel by channel
    "relu", "relu_", "relu6", "leaky_relu", "gelu", "silu", "tanh", "hardswish", "elu", "mish",
    "dropout", "dropout2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "contiguous", "clone", "detach", "neg", "abs",
}
_UNITE = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub,
          "add", "add_", "sub", "sub_"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", operator.truediv, torch.div, "div"}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.fixed: set[int] = set()

    def new(self, n: int, fixed: bool = False) -> list[int]:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        if fixed:
            self.fixed.update(range(start, start + n))
        return list(range(start, start + n))

    def find(self, k: int) -> int:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def fix(self, keys) -> None:
        self.fixed.update(keys)

    def is_fixed_root(self, root: int) -> bool:
        return root in self._fixed_roots

    def freeze(self) -> None:
        self._fixed_roots = {self.find(k) for k in self.fixed}


def _fn_name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _channels(meta) -> int | None:
    shape = getattr(meta, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return int(shape[1])


def partition(model: nn.Module, example: torch.Tensor) -> Partition:
    """Trace `model` on `example` (a batch, N ≥ 1) and partition its channels into ZIGs."""
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    was_training = model.training
    model.eval()
    try:
        gm = symbolic_trace(model)
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    uf = _UnionFind()
    keys: dict[str, list[int] | None] = {}
    raw_layers: dict[str, tuple[str, list[int], list[int]]] = {}

    def meta(node):
        return node.meta.get("tensor_meta")

    def fresh_fixed(node) -> list[int] | None:
        c = _channels(meta(node))
        return None if c is None else uf.new(c, fixed=True)

    def fix_inputs(node) -> None:
        for a in node.all_input_nodes:
            if keys.get(a.name):
                uf.fix(keys[a.name])

    for node in gm.graph.nodes:
        args_k = [keys.get(a.name) if isinstance(a, torch.fx.Node) else None for a in node.args]
        if node.op == "placeholder" or node.op == "get_attr":
            keys[node.name] = fresh_fixed(node)
        elif node.op == "output":
            fix_inputs(node)
        elif node.op == "call_module":
            mod = modules[node.target]
            if node.target in raw_layers:
                raise UnsupportedModel(f"module {node.target!r} is called more than once; ZIG tracing needs one call per layer")
            inp = args_k[0] if args_k else None
            if isinstance(mod, (nn.Conv1d, nn.Conv2d)) and inp is not None:
                if mod.groups == 1:
                    out = uf.new(mod.out_channels)
                    raw_layers[node.target] = ("linear", list(inp), out)
                    keys[node.name] = out
                elif mod.groups == mod.in_channels == mod.out_channels:
                    raw_layers[node.target] = ("channelwise", list(inp), list(inp))
                    keys[node.name] = list(inp)
                else:
                    uf.fix(inp)
                    keys[node.name] = fresh_fixed(node)
            elif isinstance(mod, nn.Linear) and inp is not None:
                if len(meta(node.args[0]).shape) == 2:
                    out = uf.new(mod.out_features)
                    raw_layers[node.target] = ("linear", list(inp), out)
                    keys[node.name] = out
                else:
                    uf.fix(inp)
                    keys[node.name] = fresh_fixed(node)
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)) and inp is not None and mod.affine:
                raw_layers[node.target] = ("channelwise", list(inp), list(inp))
                keys[node.name] = list(inp)
            elif isinstance(mod, _PASS_MODULES) and inp is not None:
                keys[node.name] = list(inp)
            elif isinstance(mod, nn.Flatten) and inp is not None:
                keys[node.name] = _flatten_keys(uf, inp, meta(node.args[0]), mod.start_dim, meta(node))
            else:
                fix_inputs(node)
                keys[node.name] = fresh_fixed(node)
        elif node.op in ("call_function", "call_method"):
            name = _fn_name(node.target)
            tensors = [k for k in args_k if k is not None]
            scalars = [a for a in node.args if isinstance(a, (int, float))]
            if node.target in _UNITE or name in _UNITE:
                if len(tensors) == 2 and len(tensors[0]) == len(tensors[1]) and not node.kwargs:
                    for a, b in zip(tensors[0], tensors[1], strict=True):
                        uf.union(a, b)
                    keys[node.name] = list(tensors[0])
                elif len(tensors) == 1 and all(s == 0 for s in scalars):
                    keys[node.name] = list(tensors[0])
                else:  # a constant or a broadcast tensor added: zero no longer maps to zero
                    fix_inputs(node)
                    keys[node.name] = fresh_fixed(node)
            elif node.target in _MUL or name in _MUL:
                is_div = name in ("truediv", "div")
                if len(tensors) == 1 and not (is_div and not isinstance(node.args[0], torch.fx.Node)):
                    keys[node.name] = list(tensors[0])  # scaled by a constant (or x / c)
                elif len(tensors) == 2 and len(tensors[0]) == len(tensors[1]) and not is_div:
                    for a, b in zip(tensors[0], tensors[1], strict=True):
                        uf.union(a, b)
                    keys[node.name] = list(tensors[0])
                else:
                    fix_inputs(node)
                    keys[node.name] = fresh_fixed(node)
            elif name == "cat":
                seq = node.args[0]
                dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
                m = meta(node)
                parts = [keys.get(a.name) if isinstance(a, torch.fx.Node) else None for a in seq]
                if m is not None and dim % len(m.shape) == 1 and all(p is not None for p in parts):
                    keys[node.name] = [k for p in parts for k in p]
                else:
                    fix_inputs(node)
                    keys[node.name] = fresh_fixed(node)
            elif name in _PASS_NAMES and tensors:
                keys[node.name] = list(args_k[0]) if args_k and args_k[0] is not None else fresh_fixed(node)
            elif name in ("flatten", "view", "reshape") and args_k and args_k[0] is not None:
                src = meta(node.args[0])
                out_m = meta(node)
                if name == "flatten":
                    start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
                else:
                    start = 1 if out_m is not None and len(out_m.shape) == 2 and out_m.shape[0] == src.shape[0] else -1
                keys[node.name] = _flatten_keys(uf, args_k[0], src, start, out_m)
            elif name in ("mean", "amax", "sum") and args_k and args_k[0] is not None:
                src = meta(node.args[0])
                dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
                dims = [dims] if isinstance(dims, int) else dims
                keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
                nd = len(src.shape)
                if dims is not None and all(d % nd >= 2 for d in dims) and (keep or all(d % nd >= 2 for d in dims)):
                    keys[node.name] = list(args_k[0])
                else:
                    fix_inputs(node)
                    keys[node.name] = fresh_fixed(node)
            elif name in ("size", "dim", "getattr", "getitem") and not isinstance(meta(node), torch.Tensor) and meta(node) is None:
                keys[node.name] = None  # shape queries and tuples: no channels
            else:
                fix_inputs(node)
                keys[node.name] = fresh_fixed(node)
        else:  # pragma: no cover - fx has no other ops
            fix_inputs(node)
            keys[node.name] = fresh_fixed(node)

    uf.freeze()
    return _build(model, uf, raw_layers)


def _flatten_keys(uf: _UnionFind, inp: list[int], src, start, out_m) -> list[int]:
    """Keys of flatten(x, start_dim=1) on (N, C, *S): channel-major, each key repeated prod(S)."""
    if src is None or out_m is None:
        uf.fix(inp)
        return uf.new(_channels(out_m) or 0, fixed=True)
    nd = len(src.shape)
    if start % nd != 1 or len(out_m.shape) != 2:
        uf.fix(inp)
        return uf.new(_channels(out_m) or 0, fixed=True)
    spatial = math.prod(int(s) for s in src.shape[2:])
    return [k for k in inp for _ in range(spatial)]


def _build(model: nn.Module, uf: _UnionFind, raw_layers) -> Partition:
    gid: dict[int, int] = {}
    groups: list[Group] = []

    def group_of(key: int) -> int:
        root = uf.find(key)
        if uf.is_fixed_root(root):
            return -1
        if root not in gid:
            gid[root] = len(groups)
            groups.append(Group(len(groups)))
        return gid[root]

    modules = dict(model.named_modules())
    layers: dict[str, Layer] = {}
    fixed = 0
    for name, (kind, in_keys, out_keys) in raw_layers.items():
        ins = [group_of(k) for k in in_keys]
        outs = [group_of(k) for k in out_keys]
        layers[name] = Layer(name, kind, ins, outs)
        mod = modules[name]
        has_bias = getattr(mod, "bias", None) is not None
        if kind == "linear":
            for c, g in enumerate(outs):
                if g < 0:
                    fixed += 1
                    continue
                groups[g].channels.append((name, c))
                groups[g].params.append((f"{name}.weight", 0, c))
                if has_bias:
                    groups[g].params.append((f"{name}.bias", 0, c))
            for j, g in enumerate(ins):
                if g >= 0:
                    groups[g].consumers.append((f"{name}.weight", 1, j))
        else:
            for c, g in enumerate(outs):
                if g < 0:
                    continue
                groups[g].params.append((f"{name}.weight", 0, c))
                if has_bias:
                    groups[g].params.append((f"{name}.bias", 0, c))
    return Partition(groups, layers, fixed)


# ---------------------------------------------------------------------------------------------
# Vectorised per-group arithmetic (what an optimizer over the partition needs every step)


class GroupIndex:
    """For each parameter holding group slices: (name, tensor, dim, gid) where gid[i] is the group
    of index i along dim (-1 for none). Per-group sums then cost one index_add per parameter.
    Every group slice of a parameter lies along one dim (rows; channel-wise vectors)."""

    def __init__(self, model: nn.Module, part: Partition):
        params = dict(model.named_parameters())
        self.num_groups = part.num_groups
        per: dict[str, tuple[int, torch.Tensor]] = {}
        for g in part.groups:
            for pname, dim, idx in g.params:
                if pname not in params:
                    raise KeyError(f"partition names parameter {pname!r} that the model does not have")
                if pname not in per:
                    per[pname] = (dim, torch.full((params[pname].shape[dim],), -1, dtype=torch.long))
                d, gids = per[pname]
                if d != dim:
                    raise ValueError(f"{pname}: group slices along two dims")
                gids[idx] = g.id
        self.entries = [(n, params[n], d, gids) for n, (d, gids) in per.items()]
        self.names = {n for n, *_ in self.entries}
        # Per entry, the positions along dim that belong to a group and their group ids, indexed
        # once here: boolean masks rebuilt in every dot() were most of DHSPG's step time
        # (steps/otov2/bench_official.py); same elements in the same order, so the same sums.
        self._sel = [(None if bool((gids >= 0).all()) else torch.nonzero(gids >= 0).flatten(), gids[gids >= 0])
                     for *_, gids in self.entries]

    def _reduce(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        other = [i for i in range(t.dim()) if i != dim]
        return t.sum(dim=other) if other else t

    def dot(self, a: dict[str, torch.Tensor] | None = None, b: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Per-group ⟨a_g, b_g⟩ (G,); a or b None means the parameters themselves."""
        out = torch.zeros(self.num_groups, dtype=torch.float64)
        for (name, p, dim, _), (pos, gsel) in zip(self.entries, self._sel, strict=True):
            ta = p.detach() if a is None else a[name]
            tb = p.detach() if b is None else b[name]
            s = self._reduce(ta * tb, dim).double().cpu()  # (G,) bookkeeping stays on the CPU
            out.index_add_(0, gsel, s if pos is None else s[pos])
        return out

    def norms(self) -> torch.Tensor:
        return self.dot().clamp_min(0).sqrt()

    def expand(self, values: torch.Tensor, name: str) -> torch.Tensor:
        """A per-group vector (G,) broadcast onto parameter `name` (0 where no group)."""
        for n, p, dim, gids in self.entries:
            if n == name:
                v = torch.where(gids >= 0, values.to(p.dtype)[gids.clamp_min(0)], torch.zeros((), dtype=p.dtype))
                shape = [1] * p.dim()
                shape[dim] = -1
                return v.to(p.device).view(shape).expand_as(p)
        raise KeyError(name)

    def member_mask(self, name: str) -> torch.Tensor:
        for n, p, dim, gids in self.entries:
            if n == name:
                shape = [1] * p.dim()
                shape[dim] = -1
                return (gids >= 0).to(p.device).view(shape).expand_as(p)
        raise KeyError(name)

    @torch.no_grad()
    def zero(self, mask: torch.Tensor) -> None:
        """Set every parameter slice of the groups where mask (G,) is True to exactly zero."""
        mask = mask.bool()
        for _, p, dim, gids in self.entries:
            sel = torch.where(gids >= 0, mask[gids.clamp_min(0)], torch.zeros((), dtype=torch.bool))
            shape = [1] * p.dim()
            shape[dim] = -1
            p.masked_fill_(sel.to(p.device).view(shape).expand_as(p), 0.0)

    def zero_groups(self) -> torch.Tensor:
        """Bool (G,): groups whose every parameter slice is exactly zero."""
        nz = torch.zeros(self.num_groups, dtype=torch.float64)
        for _, p, dim, gids in self.entries:
            s = self._reduce((p.detach() != 0).double(), dim).cpu()
            m = gids >= 0
            nz.index_add_(0, gids[m], s[m])
        return nz == 0


def zero_groups(model: nn.Module, part: Partition, ids) -> None:
    """Zero the groups `ids` of `model` in place (tests, random structured pruning)."""
    mask = torch.zeros(part.num_groups, dtype=torch.bool)
    mask[list(ids)] = True
    GroupIndex(model, part).zero(mask)


def group_sparsity(model: nn.Module, part: Partition) -> float:
    """Share of groups that are exactly zero."""
    if part.num_groups == 0:
        return 0.0
    return float(GroupIndex(model, part).zero_groups().double().mean())


# ---------------------------------------------------------------------------------------------
# Compact subnetwork


def _conv_out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class EmptyInputLayer(nn.Module):
    """A conv/linear layer all of whose input channels were removed: its output is its bias (or
    zero) on the output grid; no multiply is left, so it counts no FLOPs."""

    def __init__(self, layer: nn.Module, keep_out: torch.Tensor):
        super().__init__()
        self.is_conv = isinstance(layer, (nn.Conv1d, nn.Conv2d))
        self.out_channels = len(keep_out)
        bias = layer.bias.detach()[keep_out].clone() if layer.bias is not None else torch.zeros(len(keep_out))
        self.register_buffer("bias", bias)
        if self.is_conv:
            self.geometry = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.is_conv:
            return self.bias.expand(*x.shape[:-1], self.out_channels)
        k, s, p, d = self.geometry
        spatial = [_conv_out_size(x.shape[2 + i], k[i], s[i], p[i], d[i]) for i in range(x.dim() - 2)]
        return self.bias.view(1, -1, *([1] * len(spatial))).expand(x.shape[0], self.out_channels, *spatial).contiguous()


class EmptyOutputLayer(nn.Module):
    """A conv/linear layer all of whose output channels were removed: an empty channel axis."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.is_conv = isinstance(layer, (nn.Conv1d, nn.Conv2d))
        if self.is_conv:
            self.geometry = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.is_conv:
            return x.new_zeros(*x.shape[:-1], 0)
        k, s, p, d = self.geometry
        spatial = [_conv_out_size(x.shape[2 + i], k[i], s[i], p[i], d[i]) for i in range(x.dim() - 2)]
        return x.new_zeros(x.shape[0], 0, *spatial)


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def construct_subnet(model: nn.Module, part: Partition, removed=None) -> nn.Module:
    """A deep copy of `model` with the removed groups' channels deleted: smaller conv/linear/BN
    layers (fewer parameters and FLOPs), same forward code. `removed` is a bool (G,) tensor or a
    collection of group ids; default: every group whose parameters are all exactly zero. The
    result equals the full network only if the removed groups are zero (check max_abs_diff)."""
    if removed is None:
        removed = GroupIndex(model, part).zero_groups()
    if not isinstance(removed, torch.Tensor):
        mask = torch.zeros(part.num_groups, dtype=torch.bool)
        mask[list(removed)] = True
        removed = mask
    removed = removed.bool()
    compact = copy.deepcopy(model)

    def keep(keys: list[int]) -> torch.Tensor:
        return torch.tensor([i for i, g in enumerate(keys) if g < 0 or not bool(removed[g])], dtype=torch.long)

    for name, layer in part.layers.items():
        mod = compact.get_submodule(name)
        if layer.kind == "linear":
            ko, ki = keep(layer.out_keys), keep(layer.in_keys)
            if len(ko) == 0:
                _set_module(compact, name, EmptyOutputLayer(mod))
                continue
            if len(ki) == 0:
                _set_module(compact, name, EmptyInputLayer(mod, ko))
                continue
            with torch.no_grad():
                mod.weight = nn.Parameter(mod.weight.detach()[ko][:, ki].clone(), requires_grad=mod.weight.requires_grad)
                if mod.bias is not None:
                    mod.bias = nn.Parameter(mod.bias.detach()[ko].clone(), requires_grad=mod.bias.requires_grad)
            if isinstance(mod, nn.Linear):
                mod.in_features, mod.out_features = len(ki), len(ko)
            else:
                mod.in_channels, mod.out_channels = len(ki), len(ko)
        else:
            kc = keep(layer.out_keys)
            if len(kc) == 0:
                _set_module(compact, name, nn.Identity())  # its input already has no channels
                continue
            with torch.no_grad():
                mod.weight = nn.Parameter(mod.weight.detach()[kc].clone(), requires_grad=mod.weight.requires_grad)
                if mod.bias is not None:
                    mod.bias = nn.Parameter(mod.bias.detach()[kc].clone(), requires_grad=mod.bias.requires_grad)
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                if mod.running_mean is not None:
                    mod.running_mean = mod.running_mean[kc].clone()
                    mod.running_var = mod.running_var[kc].clone()
                mod.num_features = len(kc)
            else:  # depthwise convolution
                mod.in_channels = mod.out_channels = mod.groups = len(kc)
    return compact


@torch.no_grad()
def max_abs_diff(full: nn.Module, compact: nn.Module, x: torch.Tensor) -> float:
    """max |full(x) - compact(x)| with both networks in eval mode (their modes are restored)."""
    modes = (full.training, compact.training)
    full.eval()
    compact.eval()
    try:
        return float((full(x) - compact(x)).abs().max())
    finally:
        full.train(modes[0])
        compact.train(modes[1])
