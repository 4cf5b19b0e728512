"""What the phases share: process setup, the digits, and the tally of transfer records across
ranks (every rank records each transfer it took part in; a transfer's measured bytes are the sum
of what the ranks of its group sent, compared with the cost model's prediction for the group)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import torch

from steps.core.errors import ConfigError
from steps.oneflow.gtensor import Record


def setup(cfg) -> None:
    """One intra-op thread per process (the group's processes share the cores), set before any
    tensor work so that the forked workers inherit no thread pool; modules the workers would
    import lazily are imported once, here, before the fork."""
    torch.set_num_threads(1)
    # torch.autograd.grad(..., grad_outputs) imports this (and sympy) on first use: ≈ 1 s of CPU
    # in every forked worker, unless the parent has imported it before the fork.
    importlib.import_module("torch.fx.experimental.symbolic_shapes")

    world = int(cfg.group.world)
    if not 1 <= world <= 8:
        raise ConfigError(f"group.world must be between 1 and 8 processes, got {world}")


def tally(per_rank: Iterable[Iterable[Record]], steps: int = 1) -> dict:
    """Measured against predicted bytes for every transfer instance (seq, group), summed over
    the ranks of its group; totals per iteration and per collective kind."""
    inst: dict[tuple, dict] = {}
    for records in per_rank:
        for r in records:
            key = (r.phase if r.kind == "p2p" else "", r.seq, r.group)
            e = inst.setdefault(key, {"kind": r.kind, "phase": r.phase, "op": r.op, "predicted": r.predicted,
                                      "measured": 0, "src": r.src, "dst": r.dst, "nbytes": r.nbytes})
            e["measured"] += r.measured
    by_kind: dict[str, dict] = {}
    for e in inst.values():
        k = by_kind.setdefault(e["kind"], {"count": 0, "measured": 0, "predicted": 0})
        k["count"] += 1
        k["measured"] += e["measured"]
        k["predicted"] += e["predicted"]
    measured = sum(e["measured"] for e in inst.values())
    predicted = sum(e["predicted"] for e in inst.values())
    steps = max(1, int(steps))
    return {
        "transfers": len(inst),
        "measured_per_iter": measured / steps,
        "predicted_per_iter": predicted / steps,
        "max_abs_mismatch": max((abs(e["measured"] - e["predicted"]) for e in inst.values()), default=0),
        "mismatched_transfers": sum(e["measured"] != e["predicted"] for e in inst.values()),
        "by_kind": {k: {"count_per_iter": v["count"] / steps, "bytes_per_iter": v["measured"] / steps,
                        "predicted_per_iter": v["predicted"] / steps} for k, v in sorted(by_kind.items())},
    }


def plan_lines(records: Iterable[Record], seq_limit: int | None = None) -> list[str]:
    """Human-readable list of the transfers of one rank's first iteration."""
    out = []
    for r in records:
        if seq_limit is not None and r.seq >= seq_limit:
            break
        out.append(f"{r.phase}: {r.op} {r.src}->{r.dst} {r.kind} (mesh axis {r.axis}, {r.nbytes} B tensor, "
                   f"{r.predicted} B predicted)")
    return out
