"""What asd's miniature phases share: the bucketed scenes, building / saving / loading the
fully convolutional flows, and the velocity wrappers the samplers call."""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import checkpoint
from steps.core.io import load_npz
from steps.nn.fully_conv_unet import FullyConvUNet

ARMS = ("square", "arad")  # stage 1 training arms: square-only (SD-like) and ARAD (multi-ratio buckets)


class Buckets:
    """Scenes per canvas bucket: {name: (images (N, 1, H, W), labels (N,))}."""

    def __init__(self, path):
        d = load_npz(path, "bucketed scenes")
        self.names = [str(n) for n in d["bucket_names"]]
        self.x = {n: torch.from_numpy(d[f"x_{n}"]) for n in self.names}
        self.y = {n: torch.from_numpy(d[f"y_{n}"]) for n in self.names}

    def subset(self, names) -> Buckets:
        missing = [n for n in names if n not in self.x]
        if missing:
            from steps.core.errors import ArtifactError

            raise ArtifactError(f"bucketed scenes lack bucket(s) {', '.join(missing)} (have {', '.join(self.names)})")
        self.names = list(names)
        return self


def one_hot(labels: torch.Tensor, n: int = 10, drop: torch.Tensor | None = None) -> torch.Tensor:
    """One-hot class vectors; rows where `drop` is true get the null class (zeros)."""
    c = torch.nn.functional.one_hot(labels, n).float()
    return c if drop is None else torch.where(drop[:, None], torch.zeros_like(c), c)


def build(mcfg: DictConfig, n_classes: int, cond_channels: int) -> FullyConvUNet:
    return FullyConvUNet(channels=1, n_classes=n_classes, cond_channels=cond_channels, c1=int(mcfg.c1), c2=int(mcfg.c2),
                         emb=int(mcfg.emb), global_context=bool(mcfg.global_context))


class SRVelocity(torch.nn.Module):
    """v(x, t, c) of the super-resolution flow: c is the upsampled low-resolution image, a
    spatial condition concatenated to x (StableSR's structural condition, in miniature)."""

    def __init__(self, unet: FullyConvUNet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, c):
        return self.unet(x, t, None, spatial=c)


def saver(section_name: str, n_classes: int, cond_channels: int, **extra):
    """A save function for steps.instaflow.common.train_flow that records how to rebuild the net."""

    def save(path, cfg, model, step, **meta):
        arch = {"model": OmegaConf.to_container(cfg[section_name]), "n_classes": n_classes, "cond_channels": cond_channels}
        checkpoint.save(path, cfg, step, model=model, meta={**arch, **extra, **meta})

    return save


def load(path, what: str) -> tuple[torch.nn.Module, dict]:
    """A trained flow (eval mode, frozen) and its checkpoint meta."""
    payload = checkpoint.load(path, what)
    meta = payload["state"]["meta"]
    unet = build(OmegaConf.create(meta["model"]), meta["n_classes"], meta["cond_channels"])
    model = SRVelocity(unet) if meta["cond_channels"] else unet
    model.load_state_dict(payload["state"]["model"])
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), meta


def upsample(lr: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of the low-resolution condition to the output grid."""
    return torch.nn.functional.interpolate(lr, scale_factor=factor, mode="nearest")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2), over the whole set."""
    mse = float(np.mean((np.clip(a, -1, 1) - b) ** 2))
    return float(10.0 * np.log10(4.0 / max(mse, 1e-12)))
