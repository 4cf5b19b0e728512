"""The workload: a 3-layer MLP classifier 64 -> H -> H -> 10 on scikit-learn's 8×8 digits, SGD,
trained (a) by the SBP engine under a placement from params (`placements.<name>`) and (b) by
plain PyTorch in one process, from the same initial weights and the same batches."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from steps.core import seeding
from steps.oneflow import gtensor as gt
from steps.oneflow.sbp import parse_nd

PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as float32 in [0, 1] (64 features) and their labels (scikit-learn's
    bundled file, read without importing scikit-learn: steps.data.digits.raw)."""
    from steps.data.digits import raw

    data, target = raw()
    return torch.from_numpy(data / 16.0).float(), torch.from_numpy(target).long()


def init_params(hidden: int, seed: int, d_in: int = 64, d_out: int = 10) -> dict[str, torch.Tensor]:
    """The same full weights on every rank (a seeded generator), PyTorch Linear's uniform init."""
    g = seeding.step_generator(seed, "oneflow_init")
    shapes = {"W1": (d_in, hidden), "b1": (hidden,), "W2": (hidden, hidden), "b2": (hidden,),
              "W3": (hidden, d_out), "b3": (d_out,)}
    fan_in = {"W1": d_in, "b1": d_in, "W2": hidden, "b2": hidden, "W3": hidden, "b3": hidden}
    return {k: (torch.rand(s, generator=g) * 2 - 1) / fan_in[k] ** 0.5 for k, s in shapes.items()}


def batch_indices(seed: int, step: int, batch: int, n: int) -> torch.Tensor:
    return torch.randint(n, (batch,), generator=seeding.step_generator(seed, "oneflow_batch", step))


def mesh_of(placement: Mapping, world: int) -> tuple[int, ...]:
    """The placement's mesh shape; one -1 stands for what the world size leaves."""
    mesh = [int(n) for n in placement["mesh"]]
    if mesh.count(-1) > 1:
        raise ValueError("a mesh may have one -1")
    if -1 in mesh:
        rest = 1
        for n in mesh:
            rest *= n if n != -1 else 1
        mesh[mesh.index(-1)] = world // rest
    if torch.Size(mesh).numel() != world:
        raise ValueError(f"mesh {mesh} does not hold {world} processes")
    return tuple(mesh)


def forward(params: Mapping[str, gt.GT], x: gt.GT, y: gt.GT, n: int) -> gt.GT:
    h1 = gt.relu(gt.bias_add(gt.matmul(x, params["W1"]), params["b1"]))
    h2 = gt.relu(gt.bias_add(gt.matmul(h1, params["W2"]), params["b2"]))
    logits = gt.bias_add(gt.matmul(h2, params["W3"]), params["b3"])
    return gt.cross_entropy(logits, y, n)


def train_sbp(ctx: gt.Ctx, placement: Mapping, init: Mapping[str, torch.Tensor], X, Y, seed: int,
              batch: int, lr: float, steps: int, on_step=None) -> dict[str, torch.Tensor]:
    """Train under `placement` (SBP annotations of x, y and every parameter); returns the full
    parameters (gathered, not recorded). ctx.records holds every transfer the planner inserted."""
    params = sbp_params(ctx, placement, init)
    for step in range(steps):
        sbp_step(ctx, placement, params, X, Y, seed, step, batch, lr)
        if on_step is not None:
            on_step(step)
    return {k: ctx.to_full(params[k]).clone() for k in PARAMS}


def sbp_params(ctx: gt.Ctx, placement: Mapping, init: Mapping[str, torch.Tensor]) -> dict[str, gt.GT]:
    """The parameters as global tensors of the placement's SBP (each rank keeps its piece)."""
    sig = {k: parse_nd(v) for k, v in placement["params"].items()}
    return {k: ctx.from_full(init[k].clone(), sig[k], requires_grad=True) for k in PARAMS}


def sbp_step(ctx: gt.Ctx, placement: Mapping, params: Mapping[str, gt.GT], X, Y, seed: int, step: int,
             batch: int, lr: float) -> None:
    """One SGD step on batch `step`: forward, backward and update, every transfer planned."""
    idx = batch_indices(seed, step, batch, len(Y))
    x = ctx.from_full(X[idx], parse_nd(placement["x"]))
    y = ctx.from_full(Y[idx], parse_nd(placement["y"]))
    ctx.phase = "fwd"
    loss = forward(params, x, y, batch)
    ctx.backward(loss)
    ctx.sgd_step([params[k] for k in PARAMS], lr)


def train_torch(init: Mapping[str, torch.Tensor], X, Y, seed: int, batch: int, lr: float, steps: int,
                micro_batches: int = 1) -> dict[str, torch.Tensor]:
    """The single-process reference: plain PyTorch autograd and SGD, same weights and batches.
    micro_batches > 1 accumulates gradients (the pipeline's arithmetic)."""
    p = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    for step in range(steps):
        idx = batch_indices(seed, step, batch, len(Y))
        for xm, ym in zip(X[idx].chunk(micro_batches), Y[idx].chunk(micro_batches), strict=True):
            h1 = torch.relu(xm @ p["W1"] + p["b1"])
            h2 = torch.relu(h1 @ p["W2"] + p["b2"])
            logits = h2 @ p["W3"] + p["b3"]
            loss = F.cross_entropy(logits, ym) if micro_batches == 1 else F.cross_entropy(logits, ym, reduction="sum") / batch
            loss.backward()
        with torch.no_grad():
            for v in p.values():
                v.sub_(lr * v.grad)
                v.grad = None
    return {k: v.detach() for k, v in p.items()}


def max_abs_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in PARAMS)
