"""Full-scale data and networks for SlimFlow: CIFAR-10 (the python tarball, unpacked into one
checksummed npz of uint8 images) as an unconditional image set with the interface the phases
use for InstaFlow's captioned digits, and the choice of velocity network by `model.kind`."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import load_npz

if TYPE_CHECKING:  # torch is imported where it is used: the fetch step unpacks without it
    import torch

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def unpack_cifar10(archive: str | Path) -> np.ndarray:
    """uint8 (50000, 3, 32, 32): the five training batches of cifar-10-python.tar.gz, in order."""
    images = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for name in TRAIN_BATCHES:
                if name not in members:
                    raise ArtifactError(f"{archive} lacks {name}: not the CIFAR-10 python archive")
                batch = pickle.load(tar.extractfile(members[name]), encoding="latin1")  # the format's own encoding
                images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ArtifactError(f"CIFAR-10 archive {archive} is corrupt ({e.__class__.__name__}); delete it and rerun the fetch") from None
    return np.concatenate(images)


class ImageSet:
    """Unconditional images as tensors in [-1, 1] with the CaptionedDigits interface: `x`,
    `shape`, `caption_id` (all 0) and `cond` (a zero-width condition)."""

    def __init__(self, path):
        import torch

        d = load_npz(path, "image dataset")
        self.x = torch.from_numpy(d["images"]).float().div(127.5).sub(1.0)
        self.caption_id = torch.zeros(len(self.x), dtype=torch.long)
        self.null = torch.zeros(1, 0)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def c_dim(self) -> int:
        return 0

    def cond(self, caption_id: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        import torch

        return torch.zeros(len(caption_id), 0)


def load_data(cfg):
    """The training data a phase's io names: captioned digits (io.digits, io.captions; smoke and
    mini) or an image set (io.images; full)."""
    if "images" in cfg.io:
        return ImageSet(cfg.io.images)
    if "digits" in cfg.io and "captions" in cfg.io:
        from steps.instaflow.common import CaptionedDigits

        data = CaptionedDigits(cfg.io.digits, cfg.io.captions)
        data.shape = (data.x_dim,)
        return data
    raise ConfigError(f"{cfg.paper}.{cfg.phase} needs io.images=<npz> or io.digits=<npz> io.captions=<npz>")


def build_model(model_cfg, shape, c_dim: int) -> torch.nn.Module:
    """The velocity network `model.kind` names: velocity_mlp (flattened vectors) or unet (images)."""
    kind = str(model_cfg.kind)
    if kind == "velocity_mlp":
        from steps.nn import velocity

        return velocity.build(model_cfg, int(np.prod(shape)), c_dim)
    if kind == "unet":
        from steps.nn.diffusers_unet_velocity import build

        return build(model_cfg)
    raise ConfigError(f"model.kind must be velocity_mlp or unet, got {kind!r}")
