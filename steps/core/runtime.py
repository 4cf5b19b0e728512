"""What a training or evaluation step sets up first: seeds, device, threads and, when a launcher
started several processes, the process group (steps.core.distributed)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from steps.core import device as _device
from steps.core import distributed, seeding


@dataclass
class Runtime:
    device: object  # torch.device
    description: str
    dist: distributed.Dist


def start(cfg: DictConfig, seed: int = 0) -> Runtime:
    """Seed everything with `seed`, pick the device for `cfg.device` / `cfg.threads` (this
    process's GPU and share of the cores under a launcher) and join the launcher's process group."""
    seeding.seed_everything(seed)
    env = distributed.launcher_env()
    dev, desc = _device.setup(cfg.device, int(cfg.threads), env.local_rank, env.local_world)
    dist = distributed.init(cfg, dev, env)
    if dist.world > 1:
        desc += f", rank {dist.rank}/{dist.world} ({dist.backend}, {dist.nodes} node(s) × {dist.local_world}, {dist.launcher})"
        if dist.main:
            from steps.core.progress import log

            log.info(f"{dist.world} processes; rank 0 logs here, rank r > 0 to its own file, e.g. "
                     f"{distributed.rank_log_path(1, str(cfg.get('phase', 'step')), distributed._stderr_target())}")
    return Runtime(dev, desc, dist)
