"""The full-scale image metrics: FID (Heusel et al. 2017) with Inception features through
torchmetrics' FrechetInceptionDistance, and the CLIP score (cosine similarity of CLIP image and
caption embeddings, averaged; InstaFlow reports it on the 0-1 scale: 0.304 for InstaFlow-0.9B).

FID's feature extractor is chosen by eval.fid_features: `inception` (torch-fidelity's
Inception-v3 with the weights the fetch phase downloaded; needs the `full-eval` extra) or
`module.path:factory`, a callable returning an nn.Module that maps uint8 images (N, 3, H, W)
to features — how tests inject a tiny random network, so no weights are needed there.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from steps.core.errors import ConfigError
from steps.instaflow.sd.models import CLIP_MEAN, CLIP_STD


def fid_metric(kind: str, weights_path: str | Path | None, device) -> object:
    """A FrechetInceptionDistance that keeps its real-image statistics across reset()."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if kind == "inception":
        if weights_path is None or not Path(weights_path).is_file():
            raise ConfigError(f"Inception weights {weights_path} not found; rerun instaflow_fetch for the inception asset")
        metric = FrechetInceptionDistance(feature=2048, reset_real_features=False,
                                          feature_extractor_weights_path=str(weights_path))
    elif ":" in kind:
        mod, fn = kind.split(":", 1)
        metric = FrechetInceptionDistance(feature=getattr(importlib.import_module(mod), fn)(), reset_real_features=False)
    else:
        raise ConfigError(f"eval.fid_features must be 'inception' or 'module.path:factory', got {kind!r}")
    return metric.to(device)


def load_images(paths, resolution: int) -> torch.Tensor:
    """uint8 (N, 3, R, R): each image's shorter side resized to R (bicubic), centre-cropped."""
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = resolution / min(w, h)
            im = im.resize((max(resolution, round(w * s)), max(resolution, round(h * s))), Image.BICUBIC)
            left, top = (im.size[0] - resolution) // 2, (im.size[1] - resolution) // 2
            im = im.crop((left, top, left + resolution, top + resolution))
            out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
    return torch.stack(out)


class ClipScore:
    """Mean cosine similarity between CLIP embeddings of images and their captions."""

    def __init__(self, folder, device):
        from transformers import CLIPModel, CLIPTokenizer

        self.model = CLIPModel.from_pretrained(folder).to(device).eval().requires_grad_(False)
        self.tok = CLIPTokenizer.from_pretrained(folder)
        self.size = int(self.model.config.vision_config.image_size)
        self.device = device
        self.mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)

    @torch.no_grad()
    def text(self, captions: list[str]) -> torch.Tensor:
        ids = self.tok(captions, padding="max_length", truncation=True,
                       max_length=min(self.tok.model_max_length, self.model.config.text_config.max_position_embeddings),
                       return_tensors="pt").to(self.device)
        return F.normalize(self._embeds(self.model.get_text_features(**ids)), dim=-1)

    @torch.no_grad()
    def image(self, images_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) → unit image embeddings (resize 224-style: bicubic to the model's size)."""
        x = images_u8.to(self.device).float() / 255.0
        x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)
        x = (x.clamp(0, 1) - self.mean) / self.std
        return F.normalize(self._embeds(self.model.get_image_features(pixel_values=x)), dim=-1)

    @staticmethod
    def _embeds(out) -> torch.Tensor:
        # transformers ≥ 5 may return an output object instead of the projected tensor
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def score(self, images_u8: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Per-image cosine similarity with the matching caption embedding."""
        return (self.image(images_u8) * text_emb.to(self.device)).sum(-1)
