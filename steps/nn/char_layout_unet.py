"""A tiny convolutional text renderer conditioned on a character-cell layout: a velocity field
v(x_t, t | layout) for rectified flows (steps.nn.rectified_flow).

The layout is a (B, 4, H, W) float tensor drawn from each text line's box (the line boxes a
layout-conditioned text renderer such as TextDiffuser gets from its layout stage): channel 0
holds, at every pixel inside a line box, the id of the character whose cell it falls in (the
line's characters spread evenly over the box; 0 outside every box); channel 1 the position
across that cell (0..1); channel 2 the position down the line box (0..1); channel 3 the box
height over the image height (the glyph scale). It says where each character goes, never what
it looks like: no glyph masks, no font. A layout of all zeros is the null prompt of
classifier-free guidance.

The network is steps.nn.fully_conv_unet.FullyConvUNet (two resolution levels, a global-mean
context at the bottleneck) with the character ids embedded as learned channels: every glyph is
drawn by local convolutions, which a CPU learns in minutes where a cross-attention model at the
same budget does not learn to use its prompt at all (docs/papers/textatlas5m.md).
"""

from __future__ import annotations

import torch
from torch import nn

from steps.nn.fully_conv_unet import FullyConvUNet

GEOMETRY = 3   # layout channels after the character id: x in cell, y in box, box height / H


class CharLayoutUNet(nn.Module):
    """`glyph`: (channels, rows, cols) of a learned glyph atlas, one small feature map per
    character in cell coordinates, read bilinearly at every pixel's (x in cell, y in box): the
    network's own, learned image of each character, shared by every size and place it is drawn
    at; (0, 0, 0) gives only the character embedding."""

    def __init__(self, n_chars: int, embed: int = 16, c1: int = 16, c2: int = 48, emb: int = 64,
                 glyph: tuple[int, int, int] = (0, 0, 0)):
        super().__init__()
        self.n_chars = n_chars
        self.char = nn.Embedding(n_chars + 1, embed, padding_idx=0)
        self.glyph_shape = tuple(int(v) for v in glyph)
        gc, gh, gw = self.glyph_shape
        self.glyphs = nn.Parameter(torch.randn(n_chars + 1, gh, gw, gc) * 0.1) if gc else None
        self.unet = FullyConvUNet(channels=1, n_classes=0, cond_channels=embed + gc + GEOMETRY, c1=c1, c2=c2, emb=emb,
                                  global_context=True)

    def glyph_features(self, ids: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(B, channels, H, W): each pixel's character's atlas entry, bilinear at (u, v) ∈ [0, 1]²;
        zero outside every line box (id 0)."""
        gc, gh, gw = self.glyph_shape
        table = self.glyphs.reshape(-1, gc)
        gx, gy = u.clamp(0, 1) * (gw - 1), v.clamp(0, 1) * (gh - 1)
        x0, y0 = gx.floor().long().clamp(0, gw - 2 if gw > 1 else 0), gy.floor().long().clamp(0, gh - 2 if gh > 1 else 0)
        fx, fy = (gx - x0).unsqueeze(-1), (gy - y0).unsqueeze(-1)
        x1, y1 = (x0 + 1).clamp(max=gw - 1), (y0 + 1).clamp(max=gh - 1)
        base = ids * (gh * gw)

        def at(yy, xx):
            return table[base + yy * gw + xx]

        f = (at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) + (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy
        return (f * (ids > 0).unsqueeze(-1)).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, 1, H, W), t (B,), c (B, 1 + GEOMETRY, H, W) the layout (module docstring)."""
        ids = c[:, 0].round().long().clamp(0, self.n_chars)
        parts = [self.char(ids).permute(0, 3, 1, 2)]
        if self.glyphs is not None:
            parts.append(self.glyph_features(ids, c[:, 1], c[:, 2]))
        return self.unet(x, t, spatial=torch.cat([*parts, c[:, 1:]], dim=1))


def cell_layout(lines, slots, height: int, width: int, charset: dict[str, int], pad_x: tuple[int, int] = (2, 3),
                pad_y: tuple[int, int] = (1, 1)) -> torch.Tensor:
    """The (N, 1 + GEOMETRY, height, width) layout of N images from their line texts (N, L) and
    line boxes (N, L, 4) as (y0, y1, x0, x1), y0 < 0 for an absent line. `pad_x` / `pad_y` are
    the margins a box keeps around its text (steps.textatlas5m.synth._draw_lines: 2 px left,
    3 px right, 1 px above and below); the characters are spread evenly over what is left."""
    out = torch.zeros(len(lines), 1 + GEOMETRY, height, width)
    for i, (row, boxes) in enumerate(zip(lines, slots, strict=True)):
        for text, box in zip(row, boxes, strict=True):
            y0, y1, x0, x1 = (int(v) for v in box)
            text = str(text)
            if y0 < 0 or not text:
                continue
            ty0, ty1 = y0 + pad_y[0], max(y0 + pad_y[0] + 1, y1 - pad_y[1])
            tx0, tx1 = x0 + pad_x[0], max(x0 + pad_x[0] + 1, x1 - pad_x[1])
            ty0, ty1, tx0, tx1 = max(0, ty0), min(height, ty1), max(0, tx0), min(width, tx1)
            if ty1 <= ty0 or tx1 <= tx0:
                continue
            xs = torch.arange(tx0, tx1, dtype=torch.float32) + 0.5
            pos = (xs - tx0) / (tx1 - tx0) * len(text)              # cell coordinate: k + phase
            k = pos.floor().long().clamp(0, len(text) - 1)
            ids = torch.tensor([charset.get(ch, 0) for ch in text], dtype=torch.float32)[k]
            ys = (torch.arange(ty0, ty1, dtype=torch.float32) + 0.5 - ty0) / (ty1 - ty0)
            out[i, 0, ty0:ty1, tx0:tx1] = ids[None, :]
            out[i, 1, ty0:ty1, tx0:tx1] = (pos - k)[None, :]
            out[i, 2, ty0:ty1, tx0:tx1] = ys[:, None]
            out[i, 3, ty0:ty1, tx0:tx1] = (ty1 - ty0) / height
    return out
