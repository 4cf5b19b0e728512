"""The thin command line every step shares (STYLE R1: `main(cfg) -> dict` plus a shim).

    python -m steps.<paper>.<phase> [scale=mini] [io.<name>=<path> ...] [key=value ...]

`scale=` picks the scale, `io.*=` give the step's input and output paths, everything else is a
Hydra override of the paper's params. The config is composed and validated before any work;
a user error prints one line `error: ...` and exits non-zero (2 config, 3 artifact, 143 stopped
by SIGTERM after writing a resume checkpoint).

While the step runs, steps.core.provenance holds its context (paper, scale, phase, config hash,
the overrides that change what it computes): every artifact it writes records it, and every
artifact it reads is checked against it (an artifact built at another scale is refused).

Launched as one of several processes (steps.core.distributed), a process of rank r > 0 logs to
its own file (`<main log stem>.rank<r>.log`) and writes to the main log only one line if it fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from omegaconf import DictConfig, OmegaConf

from steps.core import provenance
from steps.core.config import OPERATIONAL_KEYS, compose, config_hash
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
    """The phase's config for a command line, with io paths filled in. The paper's overrides
    the Snakefile passes in $PAPERZOO_OVERRIDES ({paper: [key=value]}) come first, so that the
    step reads the config the Snakefile composed (cached) and the operational ones apply."""
    scale, io, overrides = parse_argv(argv)
    env = json.loads(os.environ.get("PAPERZOO_OVERRIDES") or "{}")
    overrides = [*env.get(paper, []), *overrides]
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


def open_context(cfg: DictConfig, argv: Sequence[str], startup_s: float = 0.0) -> provenance.StepContext:
    """The step context of this process (steps.core.provenance). Its overrides are those of the
    command line that change what the step computes (not io paths, threads, its seed, ...)."""
    _, _, overrides = parse_argv(argv)
    reads = set(cfg.get("phase_reads") or ())
    semantic = [o for o in overrides
                if (top := o.split("=", 1)[0].split(".", 1)[0]) not in OPERATIONAL_KEYS or top in reads]
    # The training seeds the job computed with: its own seed for a per-seed job (seed=<s> on its
    # command line), the paper's seeds for a step that reads them all (e.g. evaluate), else none.
    if any(o.startswith("seed=") for o in overrides):
        seeds = [int(cfg.seed)]
    else:
        seeds = [int(s) for s in cfg.seeds] if "seeds" in reads and "seeds" in cfg else None
    return provenance.open_step(str(cfg.paper), str(cfg.scale), str(cfg.get("phase") or ""), config_hash(cfg),
                                semantic, startup_s, seeds)


def run(main: Callable[[DictConfig], dict | None], paper: str | None, phase: str, argv: Sequence[str] | None = None) -> None:
    """Compose, run `main(cfg)`, and turn user errors into one line and an exit status.
    With paper=None (steps shared by all papers, e.g. the report) it comes from `paper=<slug>`."""
    from steps.core import distributed
    from steps.core.progress import log, setup_logging

    rank = distributed.rank_of_process()
    own_log = distributed.redirect_rank_output(rank, phase) if rank > 0 else None
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    startup = process_age()
    try:
        if paper is None:
            given = [a.split("=", 1)[1] for a in argv if a.startswith("paper=")]
            if len(given) != 1:
                raise ConfigError("give the paper as paper=<slug>")
            paper = given[0]
            argv = [a for a in argv if not a.startswith("paper=")]
        cfg = load(paper, phase, argv)
        log.info(f"{paper}.{phase} " + " ".join(argv))
        t0 = time.monotonic()
        open_context(cfg, argv, process_age())
        main(cfg)
    except PaperzooError as e:
        print(f"error: {e}", file=sys.stderr)
        if own_log is not None and e.exit_code != 143:
            own_log.last_words(f"error: rank {rank}: {e} (its log: {own_log.path})")
        if e.exit_code == 143 and rank == 0:  # SIGTERM after a resume checkpoint: under SLURM, maybe requeue
            from steps.core.slurm import requeue_after_sigterm

            requeue_after_sigterm(say=log.info)
        sys.exit(e.exit_code)
    except BaseException as e:
        if own_log is not None and not isinstance(e, SystemExit | KeyboardInterrupt):
            own_log.last_words(f"error: rank {rank} failed: {e.__class__.__name__}: {e} (traceback in {own_log.path})")
        raise
    finally:
        distributed.reset()
        provenance.close_step()
    # steps.core.benchmark reads this line: the step's own work against its start-up.
    log.info(f"{paper}.{phase} done: work {time.monotonic() - t0:.2f} s, start-up and imports {startup:.2f} s")


def process_age() -> float:
    """Seconds since this process started (Linux /proc; 0 elsewhere)."""
    try:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime") as f:
            return max(0.0, float(f.read().split()[0]) - start)
    except (OSError, ValueError, IndexError):
        return 0.0
