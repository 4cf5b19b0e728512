"""GPUSQ-ViT's measured size and BOPs: the packed model holds exactly the weights the forward
multiplies, its bytes shrink as the format says, and the executed-graph counter sees every
matrix product (attention's included) with the widths its quantizers were called with.

    python -m pytest tests/test_gpusq_vit_measure.py -q -n0
"""

from __future__ import annotations

import pytest
import torch

from steps.core.errors import PaperzooError
from steps.gpusq_vit.common import set_quant
from steps.gpusq_vit.graph_ops import executed_matmuls, totals
from steps.gpusq_vit.pack import pack, roundtrip_error, unpack
from steps.gpusq_vit.vit import ViT
from steps.nn.nm_sparsity import magnitude_mask, nm_mask


def tiny(pattern: str = "dense", bits: int | None = None) -> ViT:
    torch.manual_seed(0)
    net = ViT(8, 4, 16, 2, 2, 32).eval()
    for m in net.qlinears().values():
        if pattern == "2:4":
            m.set_mask(nm_mask(m.weight, 2, 4))
        elif pattern == "unstructured":
            m.set_mask(magnitude_mask(m.weight, 0.5))
    if bits:
        set_quant(net, bits, bits, 0.1)
        for m in net.qlinears().values():
            m.act.amax.fill_(2.0)
        net.eval()
    return net


@pytest.mark.parametrize("pattern,bits", [("dense", None), ("2:4", None), ("2:4", 8), ("2:4", 4),
                                          ("unstructured", 8), ("dense", 8)])
def test_pack_roundtrip_is_exact(pattern, bits):
    net = tiny(pattern, bits)
    blob = pack(net, pattern)
    assert roundtrip_error(net, blob) == 0.0
    back = unpack(blob)
    assert set(back) == {n for n, _ in net.named_parameters()}


def test_packed_bytes_follow_the_format():
    params = sum(p.numel() for p in tiny().parameters())
    dense = len(pack(tiny(), "dense"))
    assert 4 * params < dense < 4 * params + 4096  # float32 values plus a small header
    gemm = sum(m.weight.numel() for m in tiny().qlinears().values())
    sp24_int4 = len(pack(tiny("2:4", 4), "2:4"))
    # 2:4 INT4 stores 2 × 4 value bits + 4 metadata bits per group of 4 weights: 3/8 of a byte a weight
    assert sp24_int4 < dense - 4 * gemm + gemm * 3 // 8 + 4096
    assert len(pack(tiny("2:4", 8), "2:4")) > sp24_int4


def test_pack_refuses_a_weight_off_its_pattern():
    net = tiny("2:4")
    layer = next(iter(net.qlinears().values()))
    with torch.no_grad():
        layer.weight.fill_(1.0)  # dense values under a 2:4 mask the forward would not apply
        layer.mask.fill_(1.0)
    with pytest.raises(PaperzooError, match="not 2:4"):
        pack(net, "2:4")


def test_executed_graph_counts_attention_and_widths():
    x = torch.randn(3, 1, 8, 8)
    dense = totals(executed_matmuls(tiny(), x))
    # patch embedding, 4 GEMMs × 2 blocks, head, and one attention call per block
    assert dense["calls"] == 1 + 4 * 2 + 1 + 2
    assert dense["attention_flops"] > 0 and dense["bops"] == dense["flops"] == dense["flops_executed"]
    rows = executed_matmuls(tiny("2:4", 4), x)
    gemm = [r for r in rows if r["op"] != "attention"]
    assert all(r["bits_a"] == 4 and r["bits_b"] == 4 and r["structure"] == "2:4" for r in gemm)
    assert all(r["bits_a"] == 32 and r["executed_share"] == 1.0 for r in rows if r["op"] == "attention")
    t = totals(rows)
    expect = sum(2 * r["macs"] * 0.5 * 16 / 1024 for r in gemm) + t["attention_flops"]
    assert t["bops"] == pytest.approx(expect)
    assert t["flops"] == dense["flops"]


def test_unstructured_zeros_skipped_only_on_a_sparse_kernel():
    x = torch.randn(2, 1, 8, 8)
    net = tiny("unstructured", 8)
    csr = totals(executed_matmuls(net, x, skip_zeros=True))
    dense_kernel = totals(executed_matmuls(net, x))
    assert csr["flops_executed"] < dense_kernel["flops_executed"] == dense_kernel["flops"]
