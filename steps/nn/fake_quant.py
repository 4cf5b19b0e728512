"""Fake quantization for quantization-aware training (QAT) and post-training quantization (PTQ):
symmetric integers, per-output-channel scales for weights, one per-tensor scale for
activations, the straight-through estimator (STE) for gradients.

torch's own kernels do the rounding and the STE: `torch.fake_quantize_per_channel_affine` and
`torch.fake_quantize_per_tensor_affine` pass the gradient through where the input lies inside
the clipping range and zero it outside (Jacob et al. 2018; Bengio et al. 2013).

    w_q = quant_weight(w, bits=4)                    # per-channel, symmetric, [-8, 7]·s
    obs = ActObserver(bits=8); x_q = obs(x)          # per-tensor; EMA of max|x| while training
"""

from __future__ import annotations

import torch
from torch import nn


def qrange(bits: int) -> tuple[int, int]:
    """Signed symmetric integer range: bits=8 → (-128, 127), bits=4 → (-8, 7)."""
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in [2, 16], got {bits}")
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def weight_scales(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel scale max|w_row| / qmax (min-max calibration of a weight)."""
    _, qmax = qrange(bits)
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(1)
    return (amax / qmax).clamp_min(1e-8)


def quant_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """w fake-quantized per output channel (axis 0), symmetric; STE gradient."""
    qmin, qmax = qrange(bits)
    scale = weight_scales(w, bits).float()
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, qmin, qmax)


def quant_tensor(x: torch.Tensor, amax: float, bits: int) -> torch.Tensor:
    """x fake-quantized with one symmetric scale amax / qmax; STE gradient."""
    qmin, qmax = qrange(bits)
    return torch.fake_quantize_per_tensor_affine(x, max(float(amax), 1e-8) / qmax, 0, qmin, qmax)


class ActObserver(nn.Module):
    """Per-tensor activation fake-quant. In training mode it tracks max|x| (EMA with `momentum`;
    the first batch sets it); `calibrating` takes the running maximum instead (PTQ min–max
    calibration); in eval mode the stored range is fixed."""

    def __init__(self, bits: int, momentum: float = 0.1):
        super().__init__()
        self.bits, self.momentum = int(bits), float(momentum)
        self.register_buffer("amax", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))
        self.calibrating = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.calibrating:
            cur = x.detach().abs().max()
            if not bool(self.seen):
                self.amax.copy_(cur)
                self.seen.fill_(True)
            elif self.calibrating:
                self.amax.copy_(torch.maximum(self.amax, cur))
            else:
                self.amax.mul_(1 - self.momentum).add_(self.momentum * cur)
        return quant_tensor(x, float(self.amax), self.bits)


class QLinear(nn.Linear):
    """A linear layer that can be masked (N:M or unstructured) and fake-quantized: the forward
    uses quant_w(weight ⊙ mask) and quant_a(x). The mask is a fixed buffer, so QAT keeps the
    sparsity pattern: masked weights get zero gradient, and `apply_mask()` (called after every
    optimizer step) keeps the stored weight exactly sparse, so accounting sees the real zeros."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))
        self.w_bits: int | None = None
        self.act: ActObserver | None = None

    def set_mask(self, mask: torch.Tensor) -> None:
        self.mask.copy_(mask)
        self.apply_mask()

    @torch.no_grad()
    def apply_mask(self) -> None:
        self.weight.mul_(self.mask)

    def set_quant(self, w_bits: int | None, a_bits: int | None, momentum: float = 0.1) -> None:
        """Quantize weights to w_bits (per channel) and inputs to a_bits (per tensor); None = float."""
        self.w_bits = None if w_bits is None else int(w_bits)
        self.act = None if a_bits is None else ActObserver(int(a_bits), momentum).to(self.weight.device)

    def effective_weight(self) -> torch.Tensor:
        w = self.weight * self.mask
        return quant_weight(w, self.w_bits) if self.w_bits else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act is not None:
            x = self.act(x)
        return nn.functional.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        a = self.act.bits if self.act is not None else None
        return super().extra_repr() + f", density={float(self.mask.mean()):.3f}, w_bits={self.w_bits}, a_bits={a}"
