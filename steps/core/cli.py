"""The thin command line every step shares (STYLE R1: `main(cfg) -> dict` plus a shim).

    python -m steps.<paper>.<phase> [scale=mini] [io.<name>=<path> ...] [key=value ...]

`scale=` picks the scale, `io.*=` give the step's input and output paths, everything else is a
Hydra override of the paper's params. The config is composed and validated before any work;
a user error prints one line `error: ...` and exits non-zero (2 config, 3 artifact, 143 stopped
by SIGTERM after writing a resume checkpoint).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from omegaconf import DictConfig, OmegaConf

from steps.core.config import compose
from steps.core.errors import ConfigError, PaperzooError


def parse_argv(argv: Sequence[str]) -> tuple[str, dict, list[str]]:
    """Split the command line into (scale, io paths, overrides)."""
    scale, io, overrides = "mini", {}, []
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not key=value (usage: scale=<s> io.<name>=<path> key=value ...)")
        key, value = arg.split("=", 1)
        if key == "scale":
            scale = value
        elif key.startswith("io."):
            io[key[3:]] = value
        else:
            overrides.append(arg)
    return scale, io, overrides


def load(paper: str, phase: str, argv: Sequence[str]) -> DictConfig:
    """The phase's config for a command line, with io paths filled in."""
    scale, io, overrides = parse_argv(argv)
    cfg = compose(paper, scale, overrides, phase=phase)
    OmegaConf.set_readonly(cfg, False)
    with _open(cfg):
        cfg.io = io
    OmegaConf.set_readonly(cfg, True)
    return cfg


class _open:
    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        OmegaConf.set_struct(self.cfg, False)

    def __exit__(self, *exc):
        OmegaConf.set_struct(self.cfg, True)


def need_io(cfg: DictConfig, *names: str) -> list[str]:
    """The io paths a step needs, or a ConfigError naming the missing ones."""
    missing = [n for n in names if n not in cfg.io]
    if missing:
        raise ConfigError(f"{cfg.paper}.{cfg.phase} needs " + " ".join(f"io.{n}=<path>" for n in missing))
    return [cfg.io[n] for n in names]


def run(main: Callable[[DictConfig], dict | None], paper: str, phase: str, argv: Sequence[str] | None = None) -> None:
    """Compose, run `main(cfg)`, and turn user errors into one line and an exit status."""
    from steps.core.progress import log, setup_logging

    setup_logging()
    argv = sys.argv[1:] if argv is None else argv
    t0 = time.monotonic()
    try:
        cfg = load(paper, phase, argv)
        log.info(f"{paper}.{phase} " + " ".join(argv))
        main(cfg)
    except PaperzooError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    log.info(f"{paper}.{phase} done in {time.monotonic() - t0:.1f}s")
