"""What a training or evaluation step sets up first: seeds, device and threads."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from steps.core import device as _device
from steps.core import seeding


@dataclass
class Runtime:
    device: object  # torch.device
    description: str


def start(cfg: DictConfig, seed: int = 0) -> Runtime:
    """Seed everything with `seed` and pick the device for `cfg.device` / `cfg.threads`."""
    seeding.seed_everything(seed)
    dev, desc = _device.setup(cfg.device, int(cfg.threads))
    return Runtime(dev, desc)
