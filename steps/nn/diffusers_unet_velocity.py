"""A velocity network v(x_t, t | c) on images from diffusers' UNet2DModel, configured the way
score_sde / EDM-style U-Nets are described (nf, num_res_blocks, ch_mult, attention resolutions),
for rectified flows at full scale (SlimFlow's CIFAR-10 / FFHQ students and teachers).

Time convention of the official RectifiedFlow and SlimFlow code: t ∈ [0, 1] enters the network
as t·999. Unconditional: the caption argument is accepted and ignored (zero-width at full scale).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def unet_config(image_size: int, channels: int, nf: int, num_res_blocks: int, ch_mult: Sequence[int],
                attn_resolutions: Sequence[int], dropout: float = 0.0) -> dict:
    """UNet2DModel keyword arguments for a U-Net described as (nf, res-blocks, ch_mult, attention
    at resolutions): one down/up block per ch_mult entry, attention blocks where the block's
    input resolution is listed."""
    res, down, up = image_size, [], []
    for _ in ch_mult:
        down.append("AttnDownBlock2D" if res in attn_resolutions else "DownBlock2D")
        res //= 2
    res = image_size
    for _ in ch_mult:
        up.insert(0, "AttnUpBlock2D" if res in attn_resolutions else "UpBlock2D")
        res //= 2
    return dict(sample_size=image_size, in_channels=channels, out_channels=channels,
                layers_per_block=num_res_blocks, block_out_channels=tuple(nf * m for m in ch_mult),
                down_block_types=tuple(down), up_block_types=tuple(up), dropout=dropout,
                norm_num_groups=min(32, nf), attention_head_dim=None)


class VelocityUNet(nn.Module):
    """v(x, t, c) = UNet2DModel(x, 999·t).sample; `c` is ignored (unconditional)."""

    def __init__(self, config: dict):
        super().__init__()
        from diffusers import UNet2DModel

        self.unet = UNet2DModel(**config)
        self.shape = (int(config["in_channels"]), int(config["sample_size"]), int(config["sample_size"]))
        self.x_dim, self.c_dim = self.shape, 0

    @classmethod
    def from_pretrained(cls, folder) -> VelocityUNet:
        """A teacher in diffusers format (config.json + weights), e.g. a converted RF 1-flow."""
        from diffusers import UNet2DModel

        net = cls.__new__(cls)
        nn.Module.__init__(net)
        net.unet = UNet2DModel.from_pretrained(folder)
        n, s = int(net.unet.config.in_channels), int(net.unet.config.sample_size)
        net.shape, net.x_dim, net.c_dim = (n, s, s), (n, s, s), 0
        return net

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        return self.unet(x, t * 999.0).sample


def build(model_cfg) -> VelocityUNet:
    """A VelocityUNet from a `model:` config section (image_size, channels, nf, num_res_blocks,
    ch_mult, attn_resolutions, dropout)."""
    return VelocityUNet(unet_config(int(model_cfg.image_size), int(model_cfg.channels), int(model_cfg.nf),
                                    int(model_cfg.num_res_blocks), [int(m) for m in model_cfg.ch_mult],
                                    [int(r) for r in model_cfg.attn_resolutions], float(model_cfg.get("dropout", 0.0))))
