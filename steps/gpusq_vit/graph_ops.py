"""Operations of the executed graph: every matrix product a forward pass really runs, with the
bit widths its operands really have and the 2:4 structure its weight operand really has.

    rows = executed_matmuls(net, example)     # one row per aten matmul / attention call
    rows = executed_matmuls(net, example, skip_zeros=True)   # CSR weights: zeros skipped
    totals(rows)                              # {'flops', 'flops_sparse', 'bops', ...}

A TorchDispatchMode sees each aten call of the forward (torch.utils._python_dispatch; the same
hook torch.utils.flop_counter.FlopCounterMode uses). It

* tags the output of every fake-quantize call (`aten.fake_quantize_per_{tensor,channel}_affine*`)
  with the width of the integer range that call was given (quant_max − quant_min + 1 levels),
  by the tensor's storage, so views of it (the transposed weight F.linear hands to addmm) keep
  the tag; an untagged operand is float32 (32 bits);
* counts the multiply-accumulates of `mm`, `addmm`, `bmm` (M·K·N) and of scaled-dot-product
  attention (Q·Kᵀ and P·V: B·H·Tq·Tk·(d + d_v); Vaswani et al. 2017), whatever module issued
  them — the attention products included, which no QLinear covers;
* measures the second operand (the weight of a linear layer): exactly 2:4 along the reduction
  dimension (every group of 4 has ≥ 2 zeros) → the sparse tensor core executes half the MACs
  (NVIDIA, arXiv 2104.08378); otherwise a sparse (CSR) kernel executes its non-zero share
  (`skip_zeros`, the unstructured arm's format) and a dense kernel all of it.

Effective BOPs of a call = 2·MACs · executed share · bits(A) · bits(B) / 32², the dense FP32
model's being its FLOPs (the spec's convention, now over the executed graph).
"""

from __future__ import annotations

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from steps.nn.nm_sparsity import is_nm_sparse

aten = torch.ops.aten
_FAKE_QUANT = {
    aten.fake_quantize_per_tensor_affine.default: 3,  # index of quant_min in the arguments
    aten.fake_quantize_per_tensor_affine.tensor_qparams: 3,
    aten.fake_quantize_per_tensor_affine_cachemask.default: 3,
    aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default: 4,
    aten.fake_quantize_per_channel_affine.default: 4,
    aten.fake_quantize_per_channel_affine_cachemask.default: 4,
}
_ATTENTION = {aten._scaled_dot_product_flash_attention_for_cpu.default,
              aten._scaled_dot_product_flash_attention.default,
              aten._scaled_dot_product_efficient_attention.default,
              aten.scaled_dot_product_attention.default}


def _key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class _Recorder(TorchDispatchMode):
    def __init__(self, skip_zeros: bool):
        super().__init__()
        self.skip_zeros = skip_zeros
        self.bits: dict[int, tuple[int, torch.Tensor]] = {}  # storage → (bits, the tensor: keeps it alive)
        self.rows: list[dict] = []

    def width(self, t: torch.Tensor) -> int:
        hit = self.bits.get(_key(t))
        return hit[0] if hit else 32

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _FAKE_QUANT:
            i = _FAKE_QUANT[func]
            qmin, qmax = int(args[i]), int(args[i + 1])
            res = out[0] if isinstance(out, tuple) else out
            self.bits[_key(res)] = (math.ceil(math.log2(qmax - qmin + 1)), res)
        elif func in (aten.mm.default, aten.addmm.default, aten.bmm.default):
            a, b = (args[1], args[2]) if func is aten.addmm.default else (args[0], args[1])
            self.rows.append(self.matmul(str(func.overloadpacket.__name__), a, b))
        elif func in _ATTENTION:
            q, k, v = args[:3]
            macs = q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * (q.shape[3] + v.shape[3])
            bits = max(self.width(q), self.width(k), self.width(v))
            self.rows.append({"op": "attention", "macs": int(macs), "executed_share": 1.0, "structure": "dense",
                              "bits_a": bits, "bits_b": bits})
        return out

    def matmul(self, op: str, a: torch.Tensor, b: torch.Tensor) -> dict:
        batch = a.shape[0] if a.dim() == 3 else 1
        m, k = a.shape[-2:]
        n = b.shape[-1]
        w = (b[0] if b.dim() == 3 else b).detach().t()  # (N, K): groups of 4 along the reduction
        if k % 4 == 0 and is_nm_sparse(w, 2, 4):
            share, structure = 0.5, "2:4"
        else:
            nonzero = float((w != 0).float().mean())
            share = nonzero if self.skip_zeros else 1.0
            structure = "unstructured" if self.skip_zeros else "dense"
        return {"op": op, "macs": int(batch * m * k * n), "executed_share": share, "structure": structure,
                "bits_a": self.width(a), "bits_b": self.width(b)}


def executed_matmuls(net: torch.nn.Module, example: torch.Tensor, skip_zeros: bool = False) -> list[dict]:
    """One row per matrix product of net(example) as executed (eval mode, no grad);
    `skip_zeros`: weights that are not 2:4 run on a sparse kernel (the unstructured arm's CSR)."""
    rec = _Recorder(skip_zeros)
    with torch.no_grad(), rec:
        net(example)
    return rec.rows


def totals(rows: list[dict]) -> dict:
    """FLOPs (2·MACs), FLOPs actually executed (2:4 halves, zeros skipped) and effective BOPs."""
    flops = sum(2 * r["macs"] for r in rows)
    sparse = sum(2 * r["macs"] * r["executed_share"] for r in rows)
    bops = sum(2 * r["macs"] * r["executed_share"] * r["bits_a"] * r["bits_b"] / 32**2 for r in rows)
    attention = sum(2 * r["macs"] for r in rows if r["op"] == "attention")
    by_bits: dict[str, float] = {}
    for r in rows:  # executed FLOPs by operand widths, e.g. W4A4 (weights 4-bit, inputs 4-bit)
        k = f"W{r['bits_b']}A{r['bits_a']}"
        by_bits[k] = by_bits.get(k, 0.0) + 2 * r["macs"] * r["executed_share"]
    return {"flops": flops, "flops_executed": sparse, "bops": bops, "attention_flops": attention,
            "calls": len(rows), "flops_executed_by_bits": dict(sorted(by_bits.items()))}
