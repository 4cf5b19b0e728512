"""A small ViT (Dosovitskiy et al. 2021; DeiT layout) whose every GEMM weight is a QLinear:
patch embedding, QKV, attention projection, both MLP layers and the head, so 2:4 sparsity and
fake quantization reach every linear layer, as in GPUSQ-ViT (§3: "all the GEMM-based layers").

    net = ViT(image=16, patch=4, dim=64, depth=4, heads=4, mlp=128, classes=10)
    logits, feats = net(x, features=True)     # feats: each block's output tokens (B, T, dim)

It computes what timm's VisionTransformer computes for DeiT (class token, learned position
embedding added after the class token is prepended, pre-norm blocks, exact-erf GELU, scaled
dot-product attention with q, k, v split as timm does, final LayerNorm, the class token's
output to the head) with `norm_eps=1e-6` as timm's LayerNorms have: steps.gpusq_vit.deit
converts timm's DeiT weights into it (the patch embedding is a linear on unfolded patches,
which equals timm's stride-p convolution with its kernel flattened in (C, p, p) order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from steps.nn.fake_quant import QLinear


class Block(nn.Module):
    """Pre-norm transformer block: x + proj(attn(LN x)), then x + fc2(GELU(fc1(LN x)))."""

    def __init__(self, dim: int, heads: int, mlp: int, norm_eps: float = 1e-5):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=norm_eps), nn.LayerNorm(dim, eps=norm_eps)
        self.qkv, self.proj = QLinear(dim, 3 * dim), QLinear(dim, dim)
        self.fc1, self.fc2 = QLinear(dim, mlp), QLinear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, image: int, patch: int, dim: int, depth: int, heads: int, mlp: int,
                 classes: int = 10, channels: int = 1, norm_eps: float = 1e-5):
        super().__init__()
        if image % patch or dim % heads:
            raise ValueError(f"image {image} must be a multiple of patch {patch}, dim {dim} of heads {heads}")
        self.patch = patch
        tokens = (image // patch) ** 2
        self.patch_embed = QLinear(channels * patch * patch, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp, norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.head = QLinear(dim, classes)

    def forward(self, x: torch.Tensor, features: bool = False):
        p = self.patch
        patches = F.unfold(x, p, stride=p).transpose(1, 2)  # (B, tokens, C·p·p)
        h = self.patch_embed(patches)
        h = torch.cat([self.cls.expand(len(h), -1, -1), h], 1) + self.pos
        feats = []
        for blk in self.blocks:
            h = blk(h)
            feats.append(h)
        logits = self.head(self.norm(h)[:, 0])
        return (logits, feats) if features else logits

    def qlinears(self) -> dict[str, QLinear]:
        """Every GEMM layer by name (the layers 2:4 pruning and QAT act on)."""
        return {n: m for n, m in self.named_modules() if isinstance(m, QLinear)}

    def block_qlinears(self, i: int) -> list[QLinear]:
        b = self.blocks[i]
        return [b.qkv, b.proj, b.fc1, b.fc2]


def build(m) -> ViT:
    """The ViT of config section `model`."""
    return ViT(int(m.image), int(m.patch), int(m.dim), int(m.depth), int(m.heads), int(m.mlp), int(m.classes),
               int(m.get("channels", 1)), float(m.get("norm_eps", 1e-5)))
