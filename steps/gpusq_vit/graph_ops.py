"""Operations of the executed graph: every matrix product a forward pass really runs, with the
bit widths its operands really have and the 2:4 structure its weight operand really has.

    rows = executed_matmuls(net, example)     # one row per matrix product / attention call
    rows = executed_matmuls(net, example, skip_zeros=True)   # CSR weights: zeros skipped
    totals(rows)                              # {'flops', 'flops_executed', 'bops', ...}

A TorchFunctionMode (torch.overrides; the function-level sibling of the dispatch mode that
torch.utils.flop_counter.FlopCounterMode uses, without its import of torch._dynamo, ≈ 1.4 s a
process) sees each torch function the forward calls. It

* tags the output of every fake-quantize call (`torch.fake_quantize_per_tensor_affine`,
  `torch.fake_quantize_per_channel_affine`) with the width of the integer range that call was
  given (quant_max − quant_min + 1 levels); an untagged operand is float32 (32 bits);
* counts the multiply-accumulates of `linear` (input rows × in × out), `matmul` / `mm` / `bmm`
  / `@` (batch × M·K·N) and scaled-dot-product attention (Q·Kᵀ and P·V: B·H·Tq·Tk·(d + d_v);
  Vaswani et al. 2017), whatever module issued them — the attention products included, which
  no QLinear covers;
* measures the weight operand: exactly 2:4 along the reduction dimension (every group of 4 has
  ≥ 2 zeros) → the sparse tensor core executes half the MACs (NVIDIA, arXiv 2104.08378);
  otherwise a sparse (CSR) kernel executes its non-zero share (`skip_zeros`, the unstructured
  arm's format) and a dense kernel all of it.

Effective BOPs of a call = 2·MACs · executed share · bits(A) · bits(B) / 32², the dense FP32
model's being its FLOPs (the spec's convention, now over the executed graph).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from steps.nn.nm_sparsity import is_nm_sparse

_FAKE_QUANT = {torch.fake_quantize_per_tensor_affine: 3,  # index of quant_min in the arguments
               torch.fake_quantize_per_channel_affine: 4}
_MATMUL = {torch.matmul, torch.mm, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.mm,
           torch.Tensor.bmm}


class _Recorder(TorchFunctionMode):
    def __init__(self, skip_zeros: bool):
        super().__init__()
        self.skip_zeros = skip_zeros
        self.bits: dict[int, tuple[int, torch.Tensor]] = {}  # id → (bits, the tensor: keeps the id alive)
        self.rows: list[dict] = []

    def width(self, t: torch.Tensor) -> int:
        hit = self.bits.get(id(t))
        return hit[0] if hit and hit[1] is t else 32

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _FAKE_QUANT:
            i = _FAKE_QUANT[func]
            qmin, qmax = int(args[i]), int(args[i + 1])
            self.bits[id(out)] = (math.ceil(math.log2(qmax - qmin + 1)), out)
        elif func is F.linear:
            x, w = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            self.rows.append(self.product("linear", x, w, x.numel() // x.shape[-1], w.detach()))
        elif func in _MATMUL:
            a, b = args[0], args[1]
            batch = math.prod(a.shape[:-2]) if a.dim() > 2 else 1
            rows = batch * (a.shape[-2] if a.dim() > 1 else 1)
            w = b.detach().reshape(-1, *b.shape[-2:])[0].t() if b.dim() > 1 else b.detach()[None]
            self.rows.append(self.product("matmul", a, b, rows, w))
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            macs = math.prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
            bits = max(self.width(q), self.width(k), self.width(v))
            self.rows.append({"op": "attention", "macs": int(macs), "executed_share": 1.0, "structure": "dense",
                              "bits_a": bits, "bits_b": bits})
        return out

    def product(self, op: str, a: torch.Tensor, b: torch.Tensor, rows: int, w: torch.Tensor) -> dict:
        """A product of `rows` input rows with weight `w` (out, in): groups of 4 along `in`."""
        n, k = w.shape
        if k % 4 == 0 and is_nm_sparse(w, 2, 4):
            share, structure = 0.5, "2:4"
        else:
            share = float((w != 0).float().mean()) if self.skip_zeros else 1.0
            structure = "unstructured" if self.skip_zeros else "dense"
        return {"op": op, "macs": int(rows * k * n), "executed_share": share, "structure": structure,
                "bits_a": self.width(a), "bits_b": self.width(b)}


def executed_matmuls(net: torch.nn.Module, example: torch.Tensor, skip_zeros: bool = False) -> list[dict]:
    """One row per matrix product of net(example) as executed (no grad);
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
