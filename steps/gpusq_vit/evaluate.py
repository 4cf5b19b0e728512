"""Phase `evaluate`: top-1 of every model and the compression accounting of steps.nn.compression
(the convention all compression papers' reports share), plus the quantities GPUSQ-ViT reports,
measured:

* model size: the bytes of the model packed for deployment (steps.gpusq_vit.pack: integer codes
  at their width, 2:4 values with NVIDIA's 4 metadata bits a group, CSR for unstructured, FP32
  scales, embeddings, norms and biases, a JSON header), serialized and read back: the unpacked
  weights must equal the ones the forward multiplies (pack_roundtrip_max_abs);
* effective BOPs over the executed graph (steps.gpusq_vit.graph_ops): every matrix product the
  forward runs, attention's included, with the bit widths its fake quantizers were called with
  and the 2:4 structure its weight operand has;
* whether every 2:4 model is exactly 2:4 (≥ 2 zeros in every group of 4 input weights).

Kept beside them as accounting (arithmetic of the config, metrics.write(accounting=...)): the
size from bit widths (2:4: N·bits + 3 index bits per group of 4; CSR; FP32 scales) and the
BOPs from the QLinear layers' FLOPs × density × w_bits·a_bits / 32², with their ratios.

    python -m steps.gpusq_vit.evaluate scale=mini io.data=data/gpusq_vit/fmnist.npz io.models=models/gpusq_vit io.results=results/gpusq_vit
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import device, metrics, seeding
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.gpusq_vit.common import accuracy_on, load_model
from steps.gpusq_vit.datasets import open_data
from steps.gpusq_vit.graph_ops import executed_matmuls, totals
from steps.gpusq_vit.pack import pack, roundtrip_error
from steps.nn import compression
from steps.nn.nm_sparsity import is_nm_sparse

# Bit-width arithmetic of every model (`*`: the model's name), shown beside the measured packed
# bytes and executed-graph BOPs, never counted as a finding (steps.core.metrics.write).
ACCOUNTING = tuple(f"*.{k}" for k in ("storage_bits", "storage_kb", "bits", "bops", "size_ratio", "bops_ratio"))

def arms(cfg: DictConfig) -> list[str]:
    """Every model the DAG trains, in order: dense, pruned, QAT, PTQ."""
    return ["dense", *cfg.prune.run, *cfg.qat.run, *cfg.ptq.arms]


def model_bits(net, meta: dict) -> dict:
    """Storage (bits) of one model, by part: GEMM weights in their format, scales, the rest FP32."""
    q = meta.get("quant") or {}
    wb, ab = q.get("w_bits") or 32, q.get("a_bits")
    pattern = meta.get("pattern") or "dense"
    fmt = "csr" if pattern == "unstructured" else pattern
    ql = net.qlinears()
    weights = {f"{n}.weight" for n in ql}
    gemm = sum(compression.tensor_bits(m.weight * m.mask, wb, fmt) for m in ql.values())
    other = sum(compression.tensor_bits(p, 32) for n, p in net.named_parameters() if n not in weights)
    scales = sum(m.out_features * 32 + (32 if ab else 0) for m in ql.values()) if q.get("w_bits") else 0
    return {"gemm_weights": gemm, "scales": scales, "other_fp32": other, "total": gemm + scales + other}


def bops(net, example: torch.Tensor, meta: dict) -> dict:
    q = meta.get("quant") or {}
    wb, ab = q.get("w_bits") or 32, q.get("a_bits") or 32
    rows = compression.layer_flops(net, example)
    return {"flops_dense": sum(r["flops"] for r in rows), "flops_sparse": sum(r["sparse_flops"] for r in rows),
            "bops": sum(r["sparse_flops"] * wb * ab / 32**2 for r in rows)}


def main(cfg: DictConfig) -> dict:
    data_path, models, results = need_io(cfg, "data", "models", "results")
    t0 = time.monotonic()
    _, desc = device.setup("cpu", int(cfg.threads))  # accounting and CPU latency: on the CPU
    seeding.seed_everything(int(cfg.seed))
    data = open_data(cfg, data_path)
    example = data.example
    acc, comp, valid = {}, {}, {}
    for name in arms(cfg):
        net, meta = load_model(Path(models) / f"{name}.pt", cfg.model, f"model {name}")
        # The test set through the model exactly as trained (fake-quant in eval mode = the integer model).
        acc[name] = accuracy_on(net, data.test_batches())
        q = meta.get("quant") or {}
        with torch.no_grad():
            # Accounting sees the masked weights: density is the mask's (a weight that INT4 rounds to
            # zero is still stored and multiplied by 2:4 hardware); bit widths come from the meta.
            for m in net.qlinears().values():
                m.weight.mul_(m.mask)
        a = compression.account(net, example, latency_threads=int(cfg.eval.latency_threads) if cfg.eval.latency else None)
        size = model_bits(net, meta)
        ops = bops(net, example, meta)
        pattern = meta.get("pattern") or "dense"
        blob = pack(net, pattern)
        graph = totals(executed_matmuls(net, example, skip_zeros=pattern == "unstructured"))
        comp[name] = {"storage_bits": size["total"], "storage_kb": size["total"] / 8 / 1e3, "bits": size,
                      "params": a["params"]["total"], "params_nonzero": a["params"]["nonzero"],
                      "gemm_density": ops["flops_sparse"] / ops["flops_dense"], **ops,
                      "w_bits": q.get("w_bits") or 32, "a_bits": q.get("a_bits") or 32,
                      "packed_bytes": len(blob), "packed_kb": len(blob) / 1e3,
                      "pack_roundtrip_max_abs": roundtrip_error(net, blob), "graph": graph}
        if "latency" in a:
            comp[name]["cpu_latency_ms"] = a["latency"]["median_s"] * 1e3
        if meta.get("pattern") == "2:4":
            valid[name] = float(all(is_nm_sparse(m.weight, 2, 4) for m in net.qlinears().values()))
        log.info(f"{name}: top-1 {acc[name]:.4f}, packed {len(blob) / 1e3:.1f} kB ({size['total'] / 8e3:.1f} kB "
                 f"from bit widths), executed-graph BOPs {graph['bops']:.3g} ({ops['bops']:.3g} from bit widths)")
    base = comp["dense"]
    for c in comp.values():
        c["packed_size_ratio"] = base["packed_bytes"] / c["packed_bytes"]
        c["graph_bops_ratio"] = base["graph"]["bops"] / c["graph"]["bops"]
        c["size_ratio"] = base["storage_bits"] / c["storage_bits"]
        c["bops_ratio"] = base["bops"] / c["bops"]
        c["flops_ratio"] = base["flops_dense"] / c["flops_sparse"]
    drop = {k: acc["dense"] - v for k, v in acc.items() if k != "dense"}
    wall = time.monotonic() - t0
    out = Path(results)
    metrics.write(out / "accuracy.json", cfg, "accuracy", f"top-1 on {data.describe} of every model",
                  {"top1": acc, "drop": drop}, wall, desc)
    metrics.write(out / "compression.json", cfg, "compression",
                  "packed model bytes and executed-graph effective BOPs (measured), storage and BOPs from bit widths "
                  "(accounting), FLOPs, GEMM density, and their ratios to the dense FP32 model",
                  {**comp, "nm_valid": valid or {"none": None},
                   "pack_roundtrip_max_abs": max(c["pack_roundtrip_max_abs"] for c in comp.values())},
                  wall, desc, accounting=ACCOUNTING)
    return {"accuracy": acc, "compression": comp}


if __name__ == "__main__":
    run(main, "gpusq_vit", "evaluate")
