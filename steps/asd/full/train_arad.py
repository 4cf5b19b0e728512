"""Phase `train_arad` (full scale only): specified in params/asd/full.yaml and
workflow/rules/asd_full.smk, not implemented yet: running it says so in one line.
See docs/papers/asd.md, "Full scale"."""

from __future__ import annotations

from omegaconf import DictConfig

from steps.core.cli import run
from steps.core.errors import ConfigError


def main(cfg: DictConfig) -> dict:
    raise ConfigError("asd.train_arad at full scale is specified (params/asd/full.yaml) but not implemented yet")


if __name__ == "__main__":
    run(main, "asd", "train_arad")
