"""Checkpoints and resumable training.

A checkpoint carries the resolved config that produced it and everything needed to resume:
model, optimizer, EMA and extra state dicts, the step, and every RNG state. `TrainLoop` runs a
step-indexed loop that

* resumes from `<output>.resume.pt` when a killed run left one (SIGKILL: the last periodic
  checkpoint; SIGTERM: the step it was stopped at),
* writes that resume checkpoint every `ckpt.every_steps` steps or `ckpt.every_s` seconds,
* on SIGTERM finishes the current step, writes the checkpoint and raises `Preempted`, which the
  step CLI turns into exit status 143,
* shows progress, and deletes the resume file once the final output is written.

Because training randomness comes from `seeding.step_generator(seed, stream, step)`, a resumed
run computes exactly what the uninterrupted run computes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from steps.core import seeding
from steps.core.errors import ArtifactError, PaperzooError, remedy
from steps.core.io import atomic_path, require
from steps.core.progress import Progress, log

FORMAT = "paperzoo-checkpoint/1"


class Preempted(PaperzooError):
    """SIGTERM arrived; a resume checkpoint was written. Rerun the step to continue."""

    exit_code = 143


def save(path: str | os.PathLike, cfg: DictConfig | Mapping | None, step: int, **state) -> None:
    """Atomically write a checkpoint: `state` values with a state_dict() are stored as such."""
    import torch

    payload = {
        "format": FORMAT,
        "config": OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg,
        "step": step,
        "rng": seeding.rng_state(),
        "state": {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in state.items()},
    }
    # Through a file object: given a path, torch names the archive's root folder after the
    # (random) temporary file, and identical checkpoints would differ byte for byte.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


def load(path: str | os.PathLike, what: str = "checkpoint", map_location="cpu") -> dict:
    """Load a checkpoint written by `save`, or explain what is wrong with it."""
    import torch

    path = require(path, what)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, ...
        raise ArtifactError(f"{what} {path} is corrupt ({e.__class__.__name__}); {remedy(path)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(f"{what} {path} is not a paperzoo checkpoint; {remedy(path)}")
    return payload


def restore(payload: dict, **objects) -> None:
    """Load state dicts from a checkpoint into `objects` (model=..., optimizer=..., ...)."""
    for name, obj in objects.items():
        if name not in payload["state"]:
            raise ArtifactError(f"checkpoint has no '{name}' state (has: {', '.join(payload['state'])})")
        obj.load_state_dict(payload["state"][name])


class Snapshots(dict):
    """Named copies of state (e.g. EMA weights at each distillation budget) that a TrainLoop
    keeps in its resume checkpoint like any other object with a state_dict."""

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        self.update(state)


class TrainLoop:
    """A resumable loop over steps [start, total). Typical use:

        loop = TrainLoop(cfg, out_path, total=cfg.reflow.steps, model=net, optimizer=opt, ema=ema)
        for step in loop:            # resumes where a killed run stopped
            loss = ...; loop.log(loss=loss.item())
        loop.finish()                # after the final output is written: drop the resume file
    """

    def __init__(self, cfg: DictConfig, output: str | os.PathLike, total: int, desc: str | None = None, **objects):
        self.cfg, self.total, self.objects = cfg, total, objects
        self.output = Path(output)
        self.resume_path = self.output.with_name(self.output.name + ".resume.pt")
        self.every_steps = int(cfg.ckpt.every_steps)
        self.every_s = float(cfg.ckpt.every_s)
        self.start = 0
        if self.resume_path.exists():
            # A corrupt resume file is reported, never silently discarded or overwritten.
            payload = load(self.resume_path, "resume checkpoint")
            restore(payload, **objects)
            seeding.set_rng_state(payload["rng"])
            self.start = int(payload["step"])
            log.info(f"resuming {self.output} from step {self.start} ({self.resume_path})")
        self.progress = Progress(total, desc or self.output.name, cfg.progress.every_s, initial=self.start)
        self._term = False
        self.step = self.start

    def _on_sigterm(self, signum, frame) -> None:
        self._term = True

    def __iter__(self) -> Iterator[int]:
        old = signal.signal(signal.SIGTERM, self._on_sigterm)
        last_save = time.monotonic()
        try:
            for step in range(self.start, self.total):
                self.step = step
                yield step
                done = step + 1
                self.progress.update(1)
                if self._term:
                    self.checkpoint(done)
                    raise Preempted(f"stopped by SIGTERM at step {done}/{self.total}; resume checkpoint {self.resume_path}")
                if done < self.total and (
                    done % self.every_steps == 0 or time.monotonic() - last_save >= self.every_s
                ):
                    self.checkpoint(done)
                    last_save = time.monotonic()
            self.step = self.total
        finally:
            signal.signal(signal.SIGTERM, old)
            self.progress.close()

    def log(self, **stats) -> None:
        self.progress.stats.update(stats)

    def checkpoint(self, step: int) -> None:
        save(self.resume_path, self.cfg, step, **self.objects)

    def finish(self) -> None:
        self.resume_path.unlink(missing_ok=True)
