"""Global tensors: a logical tensor, its placement (a device mesh) and its n-D SBP; ops that
pick their signature by the boxing cost model and insert the boxing; autograd whose backward ops
are global ops too, so their transfers are derived the same way (OneFlow §3.2–3.3).

    ctx = Ctx((4,), rank)                     # 1-D mesh of 4 ranks; (2, 2) for hybrid
    x = ctx.from_full(X, [S(0)])              # data parallel input
    w = ctx.from_full(W, [B], requires_grad=True)
    y = matmul(x, w)                          # signature (S(0), B) -> S(0), no transfer
    ctx.backward(cross_entropy(y, labels, n)) # dW = X^T dY comes out P; the optimizer boxes it to B

Every transfer is a `Record` (op, collective, mesh axis, group, bytes predicted by the cost model,
bytes this rank sent); nothing is hard-coded per parallelism: change one annotation and the
planner inserts other collectives (tests/test_oneflow.py).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from steps.oneflow import sbp as sbplib
from steps.oneflow.comm import PlanComm, RingComm
from steps.oneflow.sbp import B, Sbp

Nd = tuple[Sbp, ...]


def mesh_coord(shape: Sequence[int], rank: int) -> tuple[int, ...]:
    """Row-major coordinate of `rank` in a mesh of `shape`."""
    coord = []
    for n in reversed(shape):
        coord.append(rank % n)
        rank //= n
    return tuple(reversed(coord))


def mesh_group(shape: Sequence[int], rank: int, axis: int) -> tuple[int, ...]:
    """The ranks that share `rank`'s coordinates except along `axis`, in axis order."""
    c = list(mesh_coord(shape, rank))
    out = []
    for i in range(shape[axis]):
        c[axis] = i
        r = 0
        for n, ci in zip(shape, c, strict=True):
            r = r * n + ci
        out.append(r)
    return tuple(out)


def local_shape(shape: Sequence[int], nd: Nd, mesh: Sequence[int]) -> tuple[int, ...]:
    out = list(shape)
    for s, n in zip(nd, mesh, strict=True):
        if s.split:
            out[s.axis] //= n
    return tuple(out)


@dataclass
class Record:
    """One inserted transfer on one mesh axis, as this rank saw it."""

    seq: int
    phase: str
    op: str
    kind: str
    axis: int
    group: tuple[int, ...]
    src: str
    dst: str
    nbytes: int        # bytes of the tensor the group works on
    predicted: int     # cost model: total bytes the group sends
    measured: int      # bytes this rank sent


@dataclass(eq=False)
class GT:
    """A global tensor: this rank's local piece, the logical shape, the n-D SBP."""

    local: torch.Tensor
    shape: tuple[int, ...]
    sbp: Nd
    ctx: Ctx
    requires_grad: bool = False
    leaf: bool = True
    grad: GT | None = None

    def __repr__(self) -> str:
        return f"GT{self.shape} {sbplib.fmt_nd(self.sbp)}"


@dataclass
class _Entry:
    inputs: list
    out: GT
    backward: object


@dataclass
class Ctx:
    """One rank's view of a placement: mesh, coordinate, one ring per mesh axis, the tape and
    the transfer records. plan=True: no communication, predicted bytes only (the planner's dry run)."""

    mesh: tuple[int, ...]
    rank: int = 0
    plan: bool = False
    records: list[Record] = field(default_factory=list)
    phase: str = "fwd"

    def __post_init__(self) -> None:
        self.mesh = tuple(int(n) for n in self.mesh)
        self.coord = mesh_coord(self.mesh, self.rank)
        self.comms = [PlanComm(n, c) if self.plan else RingComm(mesh_group(self.mesh, self.rank, a), self.rank)
                      for a, (n, c) in enumerate(zip(self.mesh, self.coord, strict=True))]
        self.tape: list[_Entry] = []
        self._seq = 0
        self._taping = True
        self._recording = True

    @property
    def world(self) -> int:
        return math.prod(self.mesh)

    # -- making global tensors
    def shard(self, full: torch.Tensor, nd: Nd) -> torch.Tensor:
        """This rank's piece of a logical tensor every rank holds whole (P: rank 0 of the axis
        holds the value, the others zeros)."""
        t = full
        for s, n, c in zip(nd, self.mesh, self.coord, strict=True):
            if s.split:
                t = torch.chunk(t, n, s.axis)[c]
            elif s.kind == "P" and c != 0:
                t = torch.zeros_like(t)
        return t.contiguous()

    def from_full(self, full: torch.Tensor, nd, requires_grad: bool = False) -> GT:
        nd = sbplib.parse_nd(nd) if not isinstance(nd, tuple) or not all(isinstance(s, Sbp) for s in nd) else nd
        if len(nd) != len(self.mesh):
            raise ValueError(f"SBP {sbplib.fmt_nd(nd)} has {len(nd)} axes; the mesh {self.mesh} has {len(self.mesh)}")
        if not sbplib.valid_nd(nd, full.dim()):
            raise ValueError(f"SBP {sbplib.fmt_nd(nd)} is not valid for a {full.dim()}-D tensor")
        for s, n in zip(nd, self.mesh, strict=True):
            if s.split and full.shape[s.axis] % n:
                raise ValueError(f"tensor axis {s.axis} of size {full.shape[s.axis]} does not split into {n} shards")
        return GT(self.shard(full, nd), tuple(full.shape), nd, self, requires_grad)

    @contextlib.contextmanager
    def quiet(self):
        """Transfers inside are not recorded (gathering results for checks)."""
        old, self._recording = self._recording, False
        try:
            yield
        finally:
            self._recording = old

    # -- boxing
    def _order(self, x_sbp: Nd, dst: Nd, ndim: int) -> list[int]:
        axes = [a for a in range(len(self.mesh)) if x_sbp[a] != dst[a]]
        for order in (axes, axes[::-1]):
            cur, ok = list(x_sbp), True
            for a in order:
                cur[a] = dst[a]
                ok = ok and sbplib.valid_nd(tuple(cur), ndim)
            if ok:
                return order
        # gather first (to B) on the conflicting axes, then the rest
        return [a for a in axes if dst[a].kind == "B"] + [a for a in axes if dst[a].kind != "B"]

    def box_cost(self, shape: tuple[int, ...], itemsize: int, src: Nd, dst: Nd) -> tuple[int, int]:
        """(predicted bytes, number of conversions) of boxing src -> dst."""
        total, n_conv, cur = 0, 0, list(src)
        for a in self._order(src, dst, len(shape)):
            group_sbp = tuple(B if i == a else s for i, s in enumerate(cur))
            nbytes = math.prod(local_shape(shape, group_sbp, self.mesh)) * itemsize
            total += sbplib.boxing_bytes(cur[a], dst[a], nbytes, self.mesh[a])
            n_conv += 1
            cur[a] = dst[a]
        return total, n_conv

    def box(self, x: GT, dst: Nd, op: str = "boxing") -> GT:
        """x as a global tensor of SBP `dst` (the same logical value): inserts the transfers."""
        if x.sbp == dst:
            return x
        t, cur = x.local, list(x.sbp)
        for a in self._order(x.sbp, dst, len(x.shape)):
            src_s, dst_s, comm = cur[a], dst[a], self.comms[a]
            group_sbp = tuple(B if i == a else s for i, s in enumerate(cur))
            nbytes = math.prod(local_shape(x.shape, group_sbp, self.mesh)) * t.element_size()
            kind = sbplib.collective(src_s, dst_s)
            before = comm.counter.bytes
            t = _convert(t, src_s, dst_s, comm)
            cur[a] = dst_s
            if kind in sbplib.COMMUNICATING and self._recording:
                self.records.append(Record(
                    self._seq, self.phase, op, kind, a, comm.ranks, str(src_s), str(dst_s), nbytes,
                    sbplib.boxing_bytes(src_s, dst_s, nbytes, comm.p), comm.counter.bytes - before))
                self._seq += 1
        return GT(t, x.shape, tuple(cur), self, x.requires_grad, x.leaf)

    # -- the planner: one signature per mesh axis, fewest predicted bytes
    def choose(self, op: str, inputs: Sequence[GT], out_ndim: int) -> tuple[list[Nd], Nd]:
        sigs = sbplib.signatures(op)
        best = None
        for combo in itertools.product(sigs, repeat=len(self.mesh)):
            req = [tuple(c[0][i] for c in combo) for i in range(len(inputs))]
            out = tuple(c[1] for c in combo)
            if not sbplib.valid_nd(out, out_ndim) or not all(
                    sbplib.valid_nd(r, len(x.shape)) and _divisible(x.shape, r, self.mesh) for r, x in zip(req, inputs, strict=True)):
                continue
            cost = [0, 0]
            for x, r in zip(inputs, req, strict=True):
                b, n = self.box_cost(x.shape, x.local.element_size(), x.sbp, r)
                cost[0] += b
                cost[1] += n
            if best is None or tuple(cost) < best[0]:
                best = (tuple(cost), req, out)
        if best is None:
            raise ValueError(f"no valid SBP signature for {op} on inputs {inputs}")
        return best[1], best[2]

    def apply(self, op: str, inputs: Sequence[GT], kernel, out_shape: tuple[int, ...], backward=None) -> tuple[GT, list[GT]]:
        """Run `op`: choose its signature, box the inputs, run `kernel` on the local pieces."""
        req, out_sbp = self.choose(op, inputs, len(out_shape))
        boxed = [self.box(x, r, op) for x, r in zip(inputs, req, strict=True)]
        y = kernel(*[b.local for b in boxed])
        needs = any(x.requires_grad for x in inputs)
        out = GT(y, tuple(out_shape), out_sbp, self, needs, leaf=False)
        if needs and self._taping and backward is not None:
            self.tape.append(_Entry(list(inputs), out, lambda g: backward(g, boxed)))
        return out, boxed

    # -- autograd
    def backward(self, loss: GT) -> None:
        """Reverse the tape from `loss` (seed 1, broadcast); leaves get `.grad` (a GT whose SBP the
        backward ops' signatures decided: under data parallelism a weight's is P)."""
        grads = {id(loss): GT(torch.ones_like(loss.local), loss.shape, tuple(B for _ in self.mesh), self)}
        old_phase, self.phase, self._taping = self.phase, "bwd", False
        try:
            for entry in reversed(self.tape):
                g = grads.pop(id(entry.out), None)
                if g is None:
                    continue
                for x, gx in zip(entry.inputs, entry.backward(g), strict=True):
                    if gx is None or not x.requires_grad:
                        continue
                    if x.leaf:
                        x.grad = gx if x.grad is None else add(x.grad, gx)
                    else:
                        grads[id(x)] = gx if id(x) not in grads else add(grads[id(x)], gx)
        finally:
            self.tape.clear()
            self.phase, self._taping = old_phase, True

    def sgd_step(self, params: Sequence[GT], lr: float) -> None:
        """p -= lr * grad, the gradient boxed to the parameter's SBP first (phase `grad_sync`)."""
        old, self.phase = self.phase, "grad_sync"
        try:
            for p in params:
                g = self.box(p.grad, p.sbp, "sgd")
                with torch.no_grad():
                    p.local.sub_(lr * g.local)
                p.grad = None
        finally:
            self.phase = old

    def to_full(self, x: GT) -> torch.Tensor:
        """The logical tensor on every rank (not recorded: for checks only)."""
        with self.quiet():
            return self.box(x, tuple(B for _ in self.mesh)).local


def _divisible(shape, nd: Nd, mesh) -> bool:
    sizes = list(shape)
    for s, n in zip(nd, mesh, strict=True):
        if s.split:
            if sizes[s.axis] % n:
                return False
            sizes[s.axis] //= n
    return True


def _convert(t: torch.Tensor, src: Sbp, dst: Sbp, comm: RingComm) -> torch.Tensor:
    """One mesh axis of boxing, by the table in steps.oneflow.sbp."""
    kind = sbplib.collective(src, dst)
    if kind == "identity":
        return t
    if kind == "all_reduce":
        return comm.all_reduce(t)
    if kind == "reduce_scatter":
        return comm.reduce_scatter(t, dst.axis)
    if kind == "all_gather":
        return comm.all_gather(t, src.axis)
    if kind == "all_to_all":
        return comm.all_to_all(t, src.axis, dst.axis)
    if kind == "slice":
        return torch.chunk(t, comm.p, dst.axis)[comm.pos].contiguous()
    # zero_fill: B -> P keeps the value on position 0; S -> P pads the shard with zeros
    if src.kind == "B":
        return t if comm.pos == 0 else torch.zeros_like(t)
    shape = list(t.shape)
    shape[src.axis] *= comm.p
    out = torch.zeros(shape, dtype=t.dtype)
    out.narrow(src.axis, comm.pos * t.shape[src.axis], t.shape[src.axis]).copy_(t)
    return out


# ------------------------------------------------------------------------------------------ ops

def transpose(x: GT) -> GT:
    y, _ = x.ctx.apply("transpose", [x], lambda a: a.t(), x.shape[::-1],
                       lambda g, bx: [transpose(g)])
    return y


def matmul(x: GT, w: GT) -> GT:
    """Y = X W. Backward: dX = dY W^T, dW = X^T dY, each a matmul with its own signature."""
    def bwd(g, boxed):
        xb, wb = boxed
        return [matmul(g, transpose(wb)) if x.requires_grad else None,
                matmul(transpose(xb), g) if w.requires_grad else None]

    y, _ = x.ctx.apply("matmul", [x, w], torch.mm, (x.shape[0], w.shape[1]), bwd)
    return y


def bias_add(x: GT, b: GT) -> GT:
    y, _ = x.ctx.apply("bias_add", [x, b], torch.add, x.shape, lambda g, boxed: [g, sum_rows(g)])
    return y


def add(a: GT, b: GT) -> GT:
    y, _ = a.ctx.apply("add", [a, b], torch.add, a.shape, lambda g, boxed: [g, g])
    return y


def sum_rows(x: GT) -> GT:
    y, _ = x.ctx.apply("sum_rows", [x], lambda t: t.sum(0), (x.shape[1],))
    return y


def relu(x: GT) -> GT:
    def bwd(g, boxed):
        (xb,) = boxed
        # what PyTorch's relu backward (threshold_backward) computes: dy where x > 0, else 0.
        # Not torch.ops.aten.*: its first use imports sympy (≈ 1 s in every forked worker).
        d, _ = x.ctx.apply("relu_grad", [g, xb], lambda dy, xx: torch.where(xx > 0, dy, 0.0), x.shape)
        return [d]

    y, _ = x.ctx.apply("relu", [x], torch.relu, x.shape, bwd)
    return y


def _ce_local(logits: torch.Tensor, labels: torch.Tensor, n_global: int) -> torch.Tensor:
    """Mean cross-entropy over the global batch, this rank's share: the plain mean when this
    rank holds the whole batch (bit-exact with F.cross_entropy), else its sum / n."""
    if logits.shape[0] == n_global:
        return F.cross_entropy(logits, labels)
    return F.cross_entropy(logits, labels, reduction="sum") / n_global


def cross_entropy(logits: GT, labels: GT, n_global: int) -> GT:
    def bwd(g, boxed):
        lb, yb = boxed

        def kernel(l_, y_, g_):
            with torch.enable_grad():
                leaf = l_.detach().requires_grad_(True)
                (d,) = torch.autograd.grad(_ce_local(leaf, y_, n_global), leaf, g_)
            return d

        d, _ = logits.ctx.apply("cross_entropy_grad", [lb, yb, g], kernel, logits.shape)
        return [d, None]

    y, _ = logits.ctx.apply("cross_entropy", [logits, labels], lambda l_, y_: _ce_local(l_, y_, n_global), (), bwd)
    return y
