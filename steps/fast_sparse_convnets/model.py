"""The MobileNet-v1-style network, gradual magnitude pruning of its 1×1 convolutions, and its
export to the packed inference engine (steps.fast_sparse_convnets.engine).

Network (Howard et al. 2017, as the paper prunes it, §4): a dense 3×3 stem, depthwise-separable
blocks (depthwise 3×3 + BN + ReLU6, pointwise 1×1 + BN + ReLU6), global average pooling and a
dense linear classifier; every channel count is scaled by the width multiplier. Only the 1×1
convolutions are pruned: the stem, depthwise convs and the classifier stay dense, as in the
released models (google-research/fastconvnets README: "first full convolution and final fully
connected layer are dense").

Pruning (§4, Zhu & Gupta 2017): the target sparsity rises from s_i to s_f by the cubic schedule
s(t) = s_f + (s_i − s_f)(1 − (t − t0)/(t1 − t0))³ between steps t0 and t1; every `every` steps
the smallest-magnitude weights (block=1) or 1×4 blocks along the output channels (block=4, scored
by their L2 norm) of each 1×1 layer are masked to reach s(t); masked weights stay zero.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def channels(base: int, width: float) -> int:
    """Channels at a width multiplier, rounded to a multiple of 4 (so 1×4 blocks tile C_out;
    MobileNet's own rounding is to multiples of 8)."""
    return max(4, 4 * int(round(base * width / 4)))


class MobileNetV1(nn.Module):
    def __init__(self, width: float, stem: int, blocks, in_ch: int = 1, classes: int = 10, stem_stride: int = 2):
        super().__init__()
        c0 = channels(stem, width)
        self.stem = nn.Sequential(nn.Conv2d(in_ch, c0, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU6())
        layers, c = [], c0
        for out, stride in blocks:
            co = channels(int(out), width)
            layers += [nn.Conv2d(c, c, 3, int(stride), 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(),
                       nn.Conv2d(c, co, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU6()]
            c = co
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.features(self.stem(x))
        return self.fc(x.mean((2, 3)))

    def pointwise(self) -> list[nn.Conv2d]:
        """The 1×1 convolutions, the only layers pruned."""
        return [m for m in self.features if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]


def build(cfg_model, width: float) -> MobileNetV1:
    return MobileNetV1(float(width), int(cfg_model.stem), [tuple(b) for b in cfg_model.blocks],
                       int(cfg_model.in_ch), int(cfg_model.classes), int(cfg_model.stem_stride))


# ---------------------------------------------------------------------------------------------
# Gradual magnitude pruning


def cubic_sparsity(step: int, s_i: float, s_f: float, t0: int, t1: int) -> float:
    """Zhu & Gupta (2017) eq. 1: s_i before t0, s_f after t1, a cubic ramp in between."""
    if step <= t0:
        return s_i
    if step >= t1:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (step - t0) / (t1 - t0)) ** 3


def magnitude_mask(w: torch.Tensor, sparsity: float, block: int) -> torch.Tensor:
    """A 0/1 mask of w (C_out, C_in[,1,1]) keeping the largest weights (block=1) or 1×`block`
    groups of consecutive output channels (scored by L2 norm), so that round(sparsity · units)
    units are zero. C_out must be a multiple of `block`."""
    w2 = w.detach().reshape(w.shape[0], -1)
    cout, cin = w2.shape
    if cout % block:
        raise ValueError(f"C_out={cout} is not a multiple of block {block}")
    score = w2.reshape(cout // block, block, cin).pow(2).sum(1)  # (C_out/block, C_in)
    n_zero = int(round(sparsity * score.numel()))
    keep = torch.ones(score.numel(), dtype=w.dtype)
    if n_zero > 0:
        # stable order: ties broken by position, so a mask is a function of the weights alone
        order = torch.argsort(score.flatten(), stable=True)
        keep[order[:n_zero]] = 0
    keep = keep.reshape(cout // block, 1, cin).expand(cout // block, block, cin).reshape(cout, cin)
    return keep.reshape(w.shape)


def apply_masks(model: MobileNetV1, masks: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for conv, m in zip(model.pointwise(), masks, strict=True):
            conv.weight.mul_(m)


def layer_sparsity(model: MobileNetV1) -> list[float]:
    return [float((c.weight == 0).float().mean()) for c in model.pointwise()]


# ---------------------------------------------------------------------------------------------
# Export: BN folded into the convolutions, numpy arrays in CHW order


def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of conv followed by BN in eval mode: W·γ/σ, β − μ·γ/σ (zeros stay zero)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight.detach() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    b = bn.bias.detach() - bn.running_mean * scale
    return w.numpy().astype(np.float32), b.numpy().astype(np.float32)


def export(model: MobileNetV1) -> dict:
    """The network as plain arrays for the engine: stem, [(dw, pw)], fc (weights BN-folded)."""
    model.eval()
    conv, bn = model.stem[0], model.stem[1]
    stem_w, stem_b = fold(conv, bn)
    layers, mods = [], list(model.features)
    for i in range(0, len(mods), 6):
        dw_w, dw_b = fold(mods[i], mods[i + 1])
        pw_w, pw_b = fold(mods[i + 3], mods[i + 4])
        layers.append({"dw_w": dw_w[:, 0], "dw_b": dw_b, "stride": int(mods[i].stride[0]),
                       "pw_w": pw_w[:, :, 0, 0], "pw_b": pw_b})
    return {"stem_w": stem_w, "stem_b": stem_b, "stem_stride": int(conv.stride[0]), "blocks": layers,
            "fc_w": model.fc.weight.detach().numpy().astype(np.float32),
            "fc_b": model.fc.bias.detach().numpy().astype(np.float32)}


def n_steps(n_train: int, batch: int, epochs: float) -> int:
    return int(math.ceil(n_train / batch) * epochs)
