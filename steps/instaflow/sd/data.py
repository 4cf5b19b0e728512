"""The data InstaFlow's full-scale phases share: the training prompts, the noises of the coupled
pairs, and the sharded pair store.

Pair i couples the noise z_i, the prompt i of the prompts table and the image latent
x1_i = ODE[teacher](z_i | prompt_i) (§3.2). z_i is drawn from (pairs.seed, i) alone, so every
teacher (SD 1.5, then the 2-RF) maps the same noises and prompts, whatever the shard, batch or
number of GPUs, and the shards store only x1 (float16) and i: the noise is recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from steps.core import seeding
from steps.core.errors import ConfigError
from steps.core.io import load_npz, load_parquet


def shard_range(n: int, shards: int, shard: int) -> tuple[int, int]:
    """Pair indices [start, stop) of `shard` when n pairs are split into `shards` near-equal parts."""
    if not 0 <= shard < shards:
        raise ConfigError(f"shard {shard} is outside 0..{shards - 1} (pairs.shards = {shards})")
    return shard * n // shards, (shard + 1) * n // shards


def noise(seed: int, index: Sequence[int] | torch.Tensor, shape: Sequence[int], stream: str = "pair_noise") -> torch.Tensor:
    """z_i ~ N(0, I) of `shape` for each index i, from (seed, stream, i) alone (CPU generators,
    so identical on every machine). Pairs use stream pair_noise, evaluation eval_noise."""
    idx = [int(i) for i in index]
    return torch.stack([torch.randn(*shape, generator=seeding.step_generator(seed, stream, i)) for i in idx])


def latent_shape(resolution: int, channels: int = 4, factor: int = 8) -> tuple[int, int, int]:
    """SD latents: 4 × (resolution / 8)² (4 × 64 × 64 at 512 px)."""
    if resolution % factor:
        raise ConfigError(f"pairs.resolution must be a multiple of {factor}, got {resolution}")
    return (channels, resolution // factor, resolution // factor)


class Prompts:
    """The training prompts table written by the prompts phase (columns id, text)."""

    def __init__(self, path):
        table = load_parquet(path, "training prompts")
        self.text = table["text"].tolist()

    def __len__(self) -> int:
        return len(self.text)

    def __call__(self, index: Sequence[int] | torch.Tensor) -> list[str]:
        return [self.text[int(i)] for i in index]


class PairStore:
    """The pairs of the shards this process holds: x1 (float16), their pair indices.

    With `world` processes (data-parallel training) process `rank` loads shards rank, rank +
    world, ... only, so memory per process is (number of pairs × 32 KiB) / world at 512 px.
    Every shard is verified against its content hash when loaded (steps.core.io.load_npz).
    """

    def __init__(self, shard_paths: Sequence[str | Path], rank: int = 0, world: int = 1):
        mine = list(shard_paths)[rank::world]
        if not mine:
            raise ConfigError(f"{len(shard_paths)} pair shards cannot feed {world} processes: use fewer GPUs or more shards")
        parts = [load_npz(p, "pair shard") for p in mine]
        self.x1 = torch.from_numpy(np.concatenate([p["x1"] for p in parts]))
        self.index = torch.from_numpy(np.concatenate([p["index"] for p in parts]))

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, pairs_seed: int, n: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n random pairs (with replacement): (z, x1 as float32, pair indices) on `device`."""
        pick = torch.randint(len(self), (n,), generator=generator)
        index = self.index[pick]
        z = noise(pairs_seed, index, self.x1.shape[1:])
        return z.to(device), self.x1[pick].float().to(device), index
