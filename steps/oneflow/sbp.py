"""SBP signatures, the boxing table and its cost model (OneFlow §3, arXiv 2110.15032).

An SBP says how a logical tensor maps onto the devices of one mesh axis:
  S(i) split along tensor axis i, B broadcast (replicated), P partial-sum (the logical value is
  the sum of the devices' addends). An n-D placement (hybrid parallelism, §3.3 "2D SBP") gives
  one SBP per mesh axis; the local tensor is the logical one sliced by the mesh axes in order.

Every op declares its valid 1-D signatures (input SBPs -> output SBP); an n-D signature is one
1-D signature per mesh axis. The planner (steps.oneflow.gtensor) picks, axis by axis, the
signature whose boxing of the inputs costs the fewest bytes (`boxing_bytes`), and the boxing
step inserts the transfer of this table:

  from \\ to   S(j)                    B                  P
  S(i)        all-to-all (i != j)     all-gather         local zero-fill
  B           local slice             -                  local zero-fill
  P           reduce-scatter          all-reduce         -

Cost model (total bytes sent by all p ranks of the group, tensor of n bytes, ring algorithms):
all-reduce 2(p-1)n, reduce-scatter (p-1)n, all-gather (p-1)n, all-to-all (p-1)n/p, local 0.
Nothing here communicates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sbp:
    kind: str  # "S" | "B" | "P"
    axis: int | None = None

    def __str__(self) -> str:
        return f"S({self.axis})" if self.kind == "S" else self.kind

    @property
    def split(self) -> bool:
        return self.kind == "S"


def S(axis: int) -> Sbp:
    return Sbp("S", int(axis))


B = Sbp("B")
P = Sbp("P")


def parse(text: str) -> Sbp:
    """'S(0)', 'S0', 'B' or 'P' -> Sbp."""
    t = str(text).strip().replace("(", "").replace(")", "")
    if t in ("B", "P"):
        return Sbp(t)
    if t[:1] == "S" and t[1:].isdigit():
        return S(int(t[1:]))
    raise ValueError(f"unknown SBP {text!r}; valid: S(i), B, P")


def parse_nd(value) -> tuple[Sbp, ...]:
    """One SBP per mesh axis from 'S(0)' or ['S(0)', 'B']."""
    items = [value] if isinstance(value, str) else list(value)
    return tuple(parse(v) for v in items)


def fmt_nd(nd: tuple[Sbp, ...]) -> str:
    return "(" + ", ".join(str(s) for s in nd) + ")" if len(nd) > 1 else str(nd[0])


# ------------------------------------------------------------------------------ the boxing table

def collective(src: Sbp, dst: Sbp) -> str:
    """The transfer the boxing table inserts for src -> dst on one mesh axis."""
    if src == dst:
        return "identity"
    if src.kind == "P":
        return "all_reduce" if dst.kind == "B" else "reduce_scatter"
    if src.kind == "S":
        return {"B": "all_gather", "P": "zero_fill", "S": "all_to_all"}[dst.kind]
    return "slice" if dst.kind == "S" else "zero_fill"  # B -> S, B -> P


COMMUNICATING = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all")


def boxing_bytes(src: Sbp, dst: Sbp, nbytes: int, p: int) -> int:
    """Predicted total bytes all p ranks send for src -> dst of a tensor of `nbytes` (cost model)."""
    kind = collective(src, dst)
    if p <= 1 or kind not in COMMUNICATING:
        return 0
    if kind == "all_reduce":
        return 2 * (p - 1) * nbytes
    if kind in ("reduce_scatter", "all_gather"):
        return (p - 1) * nbytes
    return (p - 1) * nbytes // p  # all_to_all: each rank keeps 1/p of its shard


# --------------------------------------------------------------------------- op signature tables
# 1-D signatures per op: (input SBPs, output SBP). Order is the tie-break among equal costs.
# Tensor axes: matrices [rows, cols]; vectors [n].

SIGNATURES: dict[str, list[tuple[tuple[Sbp, ...], Sbp]]] = {
    # Y = X W (§3.2, Table 1 of the paper's SBP examples)
    "matmul": [((S(0), B), S(0)),     # data parallel
               ((B, S(1)), S(1)),     # column model parallel
               ((S(1), S(0)), P),     # row model parallel
               ((P, B), P), ((B, P), P), ((B, B), B)],
    # Y = X + b, b broadcast over rows
    "bias_add": [((S(0), B), S(0)), ((S(1), S(0)), S(1)), ((B, B), B), ((P, P), P)],
    # Y = A + B elementwise (gradient accumulation)
    "add": [((S(0), S(0)), S(0)), ((S(1), S(1)), S(1)), ((B, B), B), ((P, P), P)],
    # nonlinear: no P
    "relu": [((S(0),), S(0)), ((S(1),), S(1)), ((B,), B)],
    # dX = dY * (X > 0): linear in dY, so P passes when the mask is whole
    "relu_grad": [((S(0), S(0)), S(0)), ((S(1), S(1)), S(1)), ((B, B), B), ((P, B), P)],
    # db = sum over rows of dY
    "sum_rows": [((S(0),), P), ((S(1),), S(0)), ((B,), B), ((P,), P)],
    # transpose of a matrix: swaps the split axis, no boxing ever needed
    "transpose": [((S(0),), S(1)), ((S(1),), S(0)), ((B,), B), ((P,), P)],
    # mean softmax cross-entropy over the global batch: (logits, labels) -> scalar loss
    "cross_entropy": [((S(0), S(0)), P), ((B, B), B)],
    # its gradient: (logits, labels, dloss) -> dlogits
    "cross_entropy_grad": [((S(0), S(0), B), S(0)), ((B, B, B), B)],
}


def signatures(op: str) -> list[tuple[tuple[Sbp, ...], Sbp]]:
    if op not in SIGNATURES:
        raise KeyError(f"no SBP signatures for op {op!r}; known: {', '.join(SIGNATURES)}")
    return SIGNATURES[op]


def valid_nd(nd: tuple[Sbp, ...], ndim: int) -> bool:
    """An n-D SBP is valid when no tensor axis is split by two mesh axes and splits are in range."""
    axes = [s.axis for s in nd if s.split]
    return len(axes) == len(set(axes)) and all(a < ndim for a in axes)
