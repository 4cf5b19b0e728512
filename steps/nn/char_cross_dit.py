"""A tiny text-to-image patch transformer ("DiT-tiny") that reads its prompt character by
character: image patches self-attend, then cross-attend to a small character transformer.
The prompt is a long tensor (B, L, 3) of (character id, line index, index in line): characters
carry 2-D text positions (which line, where in it) but no pixel layout — no glyph masks.
Used as a rectified-flow velocity v(x, t, c) (steps.nn.rectified_flow); c of all zeros is the
null prompt for classifier-free guidance."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = 1000.0 * t.float()[:, None] * freqs[None]   # t ∈ [0, 1] scaled to the usual 0..1000 range
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.n1, self.n2, self.n3 = nn.LayerNorm(dim, elementwise_affine=False), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.sa = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ca = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.mod = nn.Linear(dim, 3 * dim)   # adaLN: shift, scale, gate from the time embedding
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x, temb, text, text_pad):
        shift, scale, gate = self.mod(temb).unsqueeze(1).chunk(3, dim=-1)
        h = self.n1(x) * (1 + scale) + shift
        x = x + (1 + gate) * self.sa(h, h, h, need_weights=False)[0]
        h = self.n2(x)
        x = x + self.ca(h, text, text, key_padding_mask=text_pad, need_weights=False)[0]
        return x + self.mlp(self.n3(x))


class CharCrossDiT(nn.Module):
    def __init__(self, height: int, width: int, n_chars: int, patch: int = 8, dim: int = 128, depth: int = 4,
                 heads: int = 4, max_chars: int = 48, max_lines: int = 2, text_layers: int = 2):
        super().__init__()
        self.h, self.w, self.p = height, width, patch
        self.n_tok = (height // patch) * (width // patch)
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, self.n_tok, dim) * 0.02)
        self.t_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.char = nn.Embedding(n_chars + 1, dim, padding_idx=0)
        self.line = nn.Embedding(max_lines, dim)
        self.col = nn.Embedding(max_chars, dim)
        self.null = nn.Parameter(torch.zeros(1, 1, dim))   # always-present token: the null prompt attends to it
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.text = nn.TransformerEncoder(layer, text_layers, enable_nested_tensor=False)
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.out_norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, patch * patch)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.dim = dim

    def encode_text(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, line, col = c[..., 0], c[..., 1].clamp(0, self.line.num_embeddings - 1), c[..., 2].clamp(0, self.col.num_embeddings - 1)
        tok = self.char(ids) + self.line(line) + self.col(col)
        tok = torch.cat([self.null.expand(len(c), -1, -1), tok], dim=1)
        pad = torch.cat([torch.zeros(len(c), 1, dtype=torch.bool, device=c.device), ids == 0], dim=1)
        return self.text(tok, src_key_padding_mask=pad), pad

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        tok = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        temb = self.t_mlp(timestep_embedding(t, self.dim))
        text, pad = self.encode_text(c.long())
        for blk in self.blocks:
            tok = blk(tok, temb, text, pad)
        out = self.out(self.out_norm(tok))                      # (B, n_tok, p·p)
        gh, gw, p = self.h // self.p, self.w // self.p, self.p
        return out.view(b, gh, gw, p, p).permute(0, 1, 3, 2, 4).reshape(b, 1, self.h, self.w)


def encode_prompts(lines, charset: dict[str, int], max_chars: int) -> torch.Tensor:
    """(B, max_chars, 3) prompt tensor from per-image line texts (B, n_lines): character id
    (0 = pad), line index, index in line. Characters beyond max_chars are dropped."""
    out = torch.zeros(len(lines), max_chars, 3, dtype=torch.long)
    for i, row in enumerate(lines):
        k = 0
        for li, text in enumerate(row):
            for j, ch in enumerate(str(text)):
                if k >= max_chars:
                    break
                out[i, k] = torch.tensor([charset.get(ch, 0), li, j])
                k += 1
    return out
