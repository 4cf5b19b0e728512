"""Phase `bench`: the speed-up of PyTorch's semi-structured (2:4) sparse matmul over the dense
FP16 matmul on the GPU, at the linear-layer shapes of our ViT and of DeiT-Tiny/Small/Base
(`bench.shapes`: tokens M × input K → output N). 2:4 sparse tensor cores need Ampere or newer
(A100, H100); CPU timing of 2:4 is meaningless (spec pitfall), so without a CUDA GPU the step
records that nothing was measured and the report says so.

    python -m steps.gpusq_vit.bench_semi_structured --out results/bench      # standalone, < 1 min on a GPU
    python -m steps.gpusq_vit.bench_semi_structured scale=mini io.out=results/gpusq_vit/gpu_speedup.json
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

NOT_MEASURED = "not measured (no CUDA GPU)"
# Standalone default: our mini ViT and DeiT-Tiny/Small/Base (batch 64 × 197 tokens), QKV and MLP fc1.
DEFAULT_SHAPES = {
    "mini_fc1": [4352, 64, 128],
    "deit_tiny_qkv": [12608, 192, 576], "deit_tiny_fc1": [12608, 192, 768],
    "deit_small_qkv": [12608, 384, 1152], "deit_small_fc1": [12608, 384, 1536],
    "deit_base_qkv": [12608, 768, 2304], "deit_base_fc1": [12608, 768, 3072], "deit_base_fc2": [12608, 3072, 768],
}


def two_four(w):
    """w with the 2 smallest |w| of every 4 along the input dimension set to zero."""
    from steps.nn.nm_sparsity import nm_mask

    return w * nm_mask(w.float(), 2, 4).to(w.dtype)


def bench_shape(m: int, k: int, n: int, min_run_time: float, seed: int = 0) -> dict:
    """Dense F.linear(x, W) against F.linear(x, to_sparse_semi_structured(W)), FP16 on the GPU."""
    import torch
    from torch.sparse import to_sparse_semi_structured
    from torch.utils import benchmark

    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16, generator=g)
    w = two_four(torch.randn(n, k, device="cuda", dtype=torch.float16, generator=g))
    lin = torch.nn.functional.linear
    try:
        ws = to_sparse_semi_structured(w)
        err = float((lin(x, ws) - lin(x, w)).abs().max())
    except (RuntimeError, ValueError) as e:  # a shape or GPU the sparse kernels do not support
        return {"supported": 0.0, "reason": str(e).splitlines()[0][:200]}
    times = {}
    for name, weight in (("dense", w), ("sparse", ws)):
        lin(x, weight)  # warm-up (kernel selection, workspace)
        torch.cuda.synchronize()
        t = benchmark.Timer("lin(x, weight)", globals={"lin": lin, "x": x, "weight": weight})
        times[name] = t.blocked_autorange(min_run_time=min_run_time).median  # Timer synchronises CUDA
    return {"supported": 1.0, "dense_ms": times["dense"] * 1e3, "sparse_ms": times["sparse"] * 1e3,
            "speedup": times["dense"] / times["sparse"], "max_abs_err": err}


def measure(shapes: dict, min_run_time: float = 0.2) -> tuple[dict, str]:
    """({shape name: timings} or {'measured': 0}, description of the device or why not measured)."""
    import torch

    if not torch.cuda.is_available():
        return {"measured": 0.0}, NOT_MEASURED
    cap = torch.cuda.get_device_capability()
    name = torch.cuda.get_device_name()
    if cap < (8, 0):
        return {"measured": 0.0}, f"not measured ({name}, compute capability {cap[0]}.{cap[1]} < 8.0 has no 2:4 sparse tensor cores)"
    per = {k: bench_shape(*(int(v) for v in s), min_run_time) for k, s in shapes.items()}
    ok = [r["speedup"] for r in per.values() if r.get("supported")]
    values = {"measured": 1.0, "shapes": {k: {kk: vv for kk, vv in r.items() if kk != "reason"} for k, r in per.items()},
              "speedup_geomean": math.exp(sum(math.log(s) for s in ok) / len(ok)) if ok else None,
              "speedup_max": max(ok) if ok else None}
    reasons = "; ".join(f"{k}: {r['reason']}" for k, r in per.items() if "reason" in r)
    return values, f"measured on {name} (torch {torch.__version__})" + (f"; unsupported: {reasons}" if reasons else "")


def main(cfg) -> dict:
    from steps.core import metrics
    from steps.core.cli import need_io

    (out,) = need_io(cfg, "out")
    t0 = time.monotonic()
    shapes = {k: list(v) for k, v in cfg.bench.shapes.items()}
    values, where = measure(shapes, float(cfg.bench.min_run_time))
    metrics.write(out, cfg, "gpu_speedup", f"2:4 semi-structured sparse FP16 matmul speed-up over dense FP16: {where}",
                  values, time.monotonic() - t0, where)
    return values


def standalone(argv: list[str]) -> None:
    """`--out DIR`: measure the default shapes and write DIR/gpu_speedup.json (plain JSON)."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for gpu_speedup.json")
    ap.add_argument("--min-run-time", type=float, default=0.2)
    args = ap.parse_args(argv)
    values, where = measure(DEFAULT_SHAPES, args.min_run_time)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_speedup.json").write_text(json.dumps({"device": where, "values": values}, indent=1))
    print(json.dumps({"device": where, "values": values}, indent=1))


if __name__ == "__main__":
    if any(a.startswith("--") for a in sys.argv[1:]):
        standalone(sys.argv[1:])
    else:
        from steps.core.cli import run

        run(main, "gpusq_vit", "bench")
