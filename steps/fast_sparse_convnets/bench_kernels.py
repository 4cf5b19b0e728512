"""Phase `bench_kernels`: the sparse 1×1 kernels against a dense kernel with the same loop
structure and against BLAS, on random weight matrices at each sparsity (claim checks 1, 2, 4).

For every (C_out, C_in, H·W) shape and sparsity s: an unstructured mask (each weight kept with
probability 1 − s) for CSR, a 1×4-block mask (each block of 4 output channels × 1 input channel
kept with probability 1 − s) for BSR; the dense kernels run the same (masked) matrix densely.
Every kernel's output is checked against float64 numpy before it is timed; all run on one
thread (numba kernels are single-threaded; BLAS pinned with threadpoolctl), JIT excluded by
warm-up calls.

    python -m steps.fast_sparse_convnets.bench_kernels scale=mini io.out=results/fast_sparse_convnets/kernel_speedup.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.progress import Progress, log

# Not common.PAPER: common imports torch (≈ 2 s of CPU per process), which the kernels never use.
PAPER = "fast_sparse_convnets"


def skey(s: float) -> str:
    """A sparsity as a metric key: 0.9 → s0_9."""
    return "s" + f"{s:g}".replace(".", "_")


def masks(rng: np.random.Generator, cout: int, cin: int, s: float) -> tuple[np.ndarray, np.ndarray]:
    unstructured = rng.random((cout, cin)) >= s
    blocks = np.repeat(rng.random((cout // 4, cin)) >= s, 4, axis=0)
    return unstructured, blocks


def bench_shape(cfg: DictConfig, cout: int, cin: int, hw: int, rng, progress) -> tuple[dict, float]:
    from threadpoolctl import threadpool_limits

    from steps.fast_sparse_convnets.engine import interleaved_latency
    from steps.fast_sparse_convnets.kernels import Conv1x1

    x = rng.standard_normal((cin, hw)).astype(np.float32)
    w = rng.standard_normal((cout, cin)).astype(np.float32) / np.sqrt(cin)
    b = rng.standard_normal(cout).astype(np.float32)
    big = float(np.finfo(np.float32).max)
    out, worst = {}, 0.0
    for s in cfg.kernels.sparsities:
        m1, m4 = masks(rng, cout, cin, float(s))
        row = {"density_csr": float(m1.mean()), "density_bsr4": float(m4.mean())}
        layers = {}
        for kind, mask in (("csr", m1), ("bsr4", m4), ("dense_loop", m1), ("blas", m1), ("dense_loop_b4", m4), ("blas_b4", m4)):
            wm = w * mask
            layer = Conv1x1(wm, b, kind.removesuffix("_b4"), int(cfg.kernels.strip), -big, big)
            ref = wm.astype(np.float64) @ x.astype(np.float64) + b[:, None]
            worst = max(worst, float(np.abs(layer(x) - ref).max()))
            layers[kind] = lambda z, f=layer: f(z)
        with threadpool_limits(1):
            times = interleaved_latency(layers, x, int(cfg.kernels.repeats), int(cfg.kernels.warmup))
        for kind, t in times.items():
            row[f"t_{kind}_us"] = t["median_s"] * 1e6
        progress.update(1)
        row["speedup_csr_vs_loop"] = row["t_dense_loop_us"] / row["t_csr_us"]
        row["speedup_bsr4_vs_loop"] = row["t_dense_loop_b4_us"] / row["t_bsr4_us"]
        row["speedup_csr_vs_blas"] = row["t_blas_us"] / row["t_csr_us"]
        row["speedup_bsr4_vs_blas"] = row["t_blas_b4_us"] / row["t_bsr4_us"]
        row["block_gain"] = row["t_csr_us"] / row["t_bsr4_us"]
        out[skey(float(s))] = row
    return out, worst


def summarise(shapes: dict, sparsities: list[float]) -> dict:
    """The claim checks' numbers over all shapes: the worst case of each."""
    keys = [skey(s) for s in sorted(sparsities)]
    top = keys[-1]
    mono = all(all(rows[a]["speedup_csr_vs_loop"] < rows[b]["speedup_csr_vs_loop"] for a, b in zip(keys, keys[1:], strict=False))
               for rows in shapes.values())
    mono4 = all(all(rows[a]["speedup_bsr4_vs_loop"] < rows[b]["speedup_bsr4_vs_loop"] for a, b in zip(keys, keys[1:], strict=False))
                for rows in shapes.values())
    cells = [r for rows in shapes.values() for r in rows.values()]
    return {
        "min_speedup_csr_vs_loop_top": min(rows[top]["speedup_csr_vs_loop"] for rows in shapes.values()),
        "min_speedup_bsr4_vs_loop_top": min(rows[top]["speedup_bsr4_vs_loop"] for rows in shapes.values()),
        "monotone_csr": int(mono),
        "monotone_bsr4": int(mono4),
        "block_faster_share": sum(r["block_gain"] > 1 for r in cells) / len(cells),
        "min_block_gain": min(r["block_gain"] for r in cells),
        "max_speedup_csr_vs_blas": max(r["speedup_csr_vs_blas"] for r in cells),
        "max_speedup_bsr4_vs_blas": max(r["speedup_bsr4_vs_blas"] for r in cells),
        "top_sparsity": sorted(sparsities)[-1],
    }


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    t0 = time.monotonic()
    rng = np.random.default_rng(int(cfg.kernels.seed))
    shapes, worst = {}, 0.0
    progress = Progress(len(cfg.kernels.shapes) * len(cfg.kernels.sparsities), "kernels", cfg.progress.every_s)
    for cout, cin, hw in cfg.kernels.shapes:
        if int(cout) % 4:
            raise ArtifactError(f"kernel shape C_out={cout} is not a multiple of 4 (1×4 blocks)")
        rows, err = bench_shape(cfg, int(cout), int(cin), int(hw), rng, progress)
        shapes[f"c{cout}x{cin}_hw{hw}"] = rows
        worst = max(worst, err)
    progress.close()
    sparsities = [float(s) for s in cfg.kernels.sparsities]
    values = {"shapes": shapes, "summary": summarise(shapes, sparsities), "check": {"max_abs_err": worst}}
    log.info(f"kernels: {values['summary']}")
    metrics.write(out, cfg, "kernel_speedup",
                  "1×1-conv kernel times (µs, median, 1 thread) on random sparse matrices: CSR and 1×4-block "
                  "sparse kernels against the same-loop dense kernel and BLAS",
                  values, time.monotonic() - t0, "cpu, 1 thread")
    return values


def cli() -> None:
    run(main, PAPER, "bench_kernels")


if __name__ == "__main__":
    cli()
