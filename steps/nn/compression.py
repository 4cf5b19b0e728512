"""Compression accounting shared by every pruning/quantization report: parameters (total and
non-zero), FLOPs (dense and weight-sparse), storage bits (dense, CSR, N:M, with the index
overhead of each format) and measured latency.

    from steps.nn import compression
    acc = compression.account(model, torch.zeros(1, 1, 14, 14))          # dict, JSON-ready
    acc = compression.account(model, x, bits={"default": 8}, fmt="2:4", latency=True)

Conventions (stated once, used by every paper so their tables compare):
* a FLOP is a multiply-accumulate counted as 2 operations (torch.utils.flop_counter's rule); only
  convolutions and linear layers count (norms, activations and pooling are < 1 % here);
* sparse FLOPs scale each layer's FLOPs by the density of its weight: a zero weight costs nothing
  (the saving a sparse kernel can reach, not what a dense kernel measures);
* storage counts every parameter at its bit width plus, for a sparse format, the indices it
  needs: CSR 16-bit column indices + 32-bit row pointers; N:M (2:4) ceil(log2 C(M, N)) bits per
  group of M (the metadata of NVIDIA's sparse tensor cores); dense has no index;
* latency is the median of torch.utils.benchmark's blocked runs at a fixed thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

FLOP_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_params(model: nn.Module) -> dict[str, int]:
    """{'total': every parameter, 'nonzero': those not exactly zero} (shared weights once)."""
    params = list({id(p): p for p in model.parameters()}.values())
    return {
        "total": int(sum(p.numel() for p in params)),
        "nonzero": int(sum(int(torch.count_nonzero(p.detach())) for p in params)),
    }


def layer_flops(model: nn.Module, example: torch.Tensor | tuple) -> list[dict]:
    """One row per convolution/linear call in a forward pass on `example`:
    {'name', 'flops' (dense, 2·MACs), 'density' (non-zero share of the weight), 'sparse_flops'}."""
    rows: list[dict] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor, name: str) -> None:
        weight = module.weight
        if isinstance(module, nn.Linear):
            macs = output.numel() * module.in_features
        else:  # convolution: every output element reads (C_in / groups) · prod(kernel) weights
            macs = output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        density = float(torch.count_nonzero(weight.detach())) / weight.numel()
        rows.append({"name": name, "flops": 2 * macs, "density": density, "sparse_flops": 2 * macs * density})

    handles = [
        m.register_forward_hook(lambda mod, i, o, n=name: hook(mod, i, o, n))
        for name, m in model.named_modules()
        if isinstance(m, FLOP_LAYERS)
    ]
    try:
        with torch.no_grad():
            model(*example) if isinstance(example, tuple) else model(example)
    finally:
        for h in handles:
            h.remove()
    return rows


def flops(model: nn.Module, example: torch.Tensor | tuple) -> dict[str, float]:
    """{'dense': FLOPs of the network as built, 'sparse': FLOPs skipping zero weights} for one
    forward pass on `example` (its batch size included)."""
    rows = layer_flops(model, example)
    return {"dense": float(sum(r["flops"] for r in rows)), "sparse": float(sum(r["sparse_flops"] for r in rows))}


def nm_index_bits(n: int, m: int) -> int:
    """Bits that say which n of each m weights are kept: ceil(log2 C(m, n)) (2:4 → 3; NVIDIA
    stores 2 × 2-bit indices = 4 per group, an upper bound we do not use)."""
    return math.ceil(math.log2(math.comb(m, n)))


def tensor_bits(t: torch.Tensor, bits: int = 32, fmt: str = "dense") -> int:
    """Storage bits of one tensor at `bits` per stored value in format 'dense', 'csr' or 'N:M'."""
    t = t.detach()
    if fmt == "dense":
        return t.numel() * bits
    nnz = int(torch.count_nonzero(t))
    if fmt == "csr":
        rows = t.shape[0] if t.dim() > 1 else 1
        return nnz * (bits + 16) + (rows + 1) * 32
    if ":" in fmt:
        n, m = (int(v) for v in fmt.split(":"))
        if t.dim() < 2 or t.numel() % m:
            return t.numel() * bits  # vectors (biases, norms) stay dense
        groups = t.numel() // m
        return groups * (n * bits + nm_index_bits(n, m))
    raise ValueError(f"unknown storage format {fmt!r}: use 'dense', 'csr' or 'N:M' such as '2:4'")


def storage_bits(
    model: nn.Module, bits: Mapping[str, int] | int = 32, fmt: str = "dense", sparse_min_dim: int = 2
) -> int:
    """Bits to store every parameter. `bits` is one width or {'default': w, '<param name>': w};
    the sparse `fmt` applies to weight matrices/kernels (dim ≥ sparse_min_dim), vectors stay dense."""
    widths = {"default": bits} if isinstance(bits, int) else dict(bits)
    total = 0
    for name, p in model.named_parameters():
        width = widths.get(name, widths.get("default", 32))
        total += tensor_bits(p, width, fmt if p.dim() >= sparse_min_dim else "dense")
    return total


def latency(fn: Callable[[], object], threads: int = 1, min_run_time: float = 0.2) -> dict[str, float]:
    """Median and interquartile range (seconds) of `fn()` with torch.utils.benchmark at `threads`."""
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return {"median_s": float(m.median), "iqr_s": float(m.iqr), "runs": int(len(m.times)), "threads": threads}


def account(
    model: nn.Module,
    example: torch.Tensor,
    bits: Mapping[str, int] | int = 32,
    fmt: str = "dense",
    latency_threads: int | None = None,
) -> dict:
    """Everything a report row needs: params, FLOPs, storage (bits and MB) and, when
    latency_threads is given, measured latency of a forward pass on `example`."""
    was_training = model.training
    model.eval()
    try:
        out = {
            "params": count_params(model),
            "flops": flops(model, example),
            "storage_bits": storage_bits(model, bits, fmt),
            "format": fmt,
        }
        out["storage_mb"] = out["storage_bits"] / 8 / 1e6
        if latency_threads is not None:
            with torch.no_grad():
                out["latency"] = latency(lambda: model(example), threads=latency_threads)
    finally:
        model.train(was_training)
    return out
