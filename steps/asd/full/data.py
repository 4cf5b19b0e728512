"""The images ASD's full-scale phases read: img2dataset's "files" output (LAION-COCO images
downloaded from the parquet's URLs) and MM-CelebA-HQ supplied by the user — every image file
with a sibling .txt caption, in any sub-folder. The first `n_eval` pairs (sorted paths, LAION
first) are held out for evaluation (generate's captions, FID's real images); ARAD trains on
the rest. Images go to aspect-ratio buckets (ARAD §3.1): each image to the bucket whose H/W is
nearest in log ratio, then resized to cover the bucket and centre-cropped to it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from steps.core.errors import ConfigError

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")


def pairs(*roots) -> list[tuple[Path, str]]:
    """(image path, caption) for every image with a .txt caption under the roots (missing or
    empty roots contribute nothing)."""
    out = []
    for root in roots:
        if root is None or not Path(root).is_dir():
            continue
        for p in sorted(Path(root).rglob("*")):
            if p.suffix.lower() in IMAGE_EXT and p.with_suffix(".txt").is_file():
                out.append((p, p.with_suffix(".txt").read_text().strip()))
    return out


def split(items: list, n_eval: int) -> tuple[list, list]:
    """(evaluation, training) pairs."""
    if len(items) <= n_eval:
        raise ConfigError(f"{len(items)} image/caption pairs cannot hold out {n_eval} for evaluation and train on the rest")
    return items[:n_eval], items[n_eval:]


def ratios(cfg) -> list[tuple[int, int]]:
    """The buckets (H, W) in px, each a multiple of 8 (SD's VAE)."""
    out = [(int(h), int(w)) for h, w in cfg.full.ratios]
    if any(h % 8 or w % 8 for h, w in out):
        raise ConfigError(f"full.ratios must be multiples of 8 px, got {out}")
    return out


def image_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size[1], im.size[0]


def bucket_of(hw: tuple[int, int], buckets: list[tuple[int, int]]) -> int:
    """The bucket whose aspect ratio is nearest in log ratio."""
    r = math.log(hw[0] / hw[1])
    return min(range(len(buckets)), key=lambda i: abs(math.log(buckets[i][0] / buckets[i][1]) - r))


def load_image(path, hw: tuple[int, int]) -> torch.Tensor:
    """Float (3, H, W) in [-1, 1]: resized (bicubic) to cover hw, centre-cropped to it."""
    from PIL import Image

    h, w = hw
    with Image.open(path) as im:
        im = im.convert("RGB")
        s = max(h / im.size[1], w / im.size[0])
        im = im.resize((max(w, round(im.size[0] * s)), max(h, round(im.size[1] * s))), Image.BICUBIC)
        left, top = (im.size[0] - w) // 2, (im.size[1] - h) // 2
        im = im.crop((left, top, left + w, top + h))
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float()
    return x / 127.5 - 1.0
