"""Checkpoints and resumable training.

A checkpoint carries the resolved config that produced it and everything needed to resume:
model, optimizer, EMA and extra state dicts, the step, and every RNG state. It is a torch file
sealed with its SHA-256 and provenance record (steps.core.io.save_torch, steps.core.seal): `load`
checks the seal (and, inside a step, the scale it was built at) before torch unpickles it, so an
altered checkpoint is reported, never used. `TrainLoop` runs a step-indexed loop that

* resumes from `<output>.resume.pt` when a killed run left one (SIGKILL: the last periodic
  checkpoint; SIGTERM: the step it was stopped at), but only when that file was written for the
  same computation: the same semantic config (steps.core.config.config_hash) and the same inputs
  (the digests of the artifacts the step read through steps.core before the loop started,
  steps.core.provenance.inputs_fingerprint). Otherwise it logs one line saying why, moves the
  file aside to `<output>.resume.pt.stale` and starts from step 0. (Moved, not deleted: a resume
  file can hold days of GPU time, and a mismatch may be an accident, such as a missing override
  when resubmitting; renaming it back resumes it. One slot per output, so they do not pile up.)
* writes that resume checkpoint every `ckpt.every_steps` steps or `ckpt.every_s` seconds,
* on SIGTERM finishes the current step, writes the checkpoint and raises `Preempted`, which the
  step CLI turns into exit status 143,
* shows progress, and deletes the resume file once the final output is written.

Because training randomness comes from `seeding.step_generator(seed, stream, step)`, a resumed
run computes exactly what the uninterrupted run computes.

Distributed (steps.core.distributed): every rank runs the loop; rank 0 alone writes checkpoints
and deletes the resume file, every rank reads it on restart (the state saved is the unwrapped
model's, the same for any world size, so N ranks' checkpoint resumes on M). After each step the
ranks agree in one small all-reduce on the logged stats (their mean is what the log shows) and
on whether to stop (SIGTERM reached any of them) or checkpoint (rank 0's clock decides), so they
all stop at the same step. `loop.record()` is what the output checkpoint's meta should carry:
world size, devices, precision and effective batch actually used, and the loss curve.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from steps.core import distributed, provenance, seeding
from steps.core.config import config_hash
from steps.core.errors import ArtifactError, PaperzooError, remedy
from steps.core.io import load_torch, save_torch, verify_torch
from steps.core.progress import Progress, log

FORMAT = "paperzoo-checkpoint/1"


class Preempted(PaperzooError):
    """SIGTERM arrived; a resume checkpoint was written. Rerun the step to continue."""

    exit_code = 143


def _payload(cfg: DictConfig | Mapping | None, step: int, state: dict) -> dict:
    return {
        "format": FORMAT,
        "config": OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg,
        "step": step,
        "rng": seeding.rng_state(),
        "state": {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in state.items()},
    }


def save(path: str | os.PathLike, cfg: DictConfig | Mapping | None, step: int, **state) -> None:
    """Atomically write a sealed checkpoint: `state` values with a state_dict() are stored as such."""
    save_torch(path, _payload(cfg, step, state))


def load(path: str | os.PathLike, what: str = "checkpoint", map_location="cpu") -> dict:
    """Load a checkpoint written by `save` after checking its seal, or explain what is wrong with it."""
    payload = load_torch(path, what, map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(f"{what} {path} is not a paperzoo checkpoint; {remedy(path)}")
    return payload


def restore(payload: dict, **objects) -> None:
    """Load state dicts from a checkpoint into `objects` (model=..., optimizer=..., ...)."""
    for name, obj in objects.items():
        if name not in payload["state"]:
            raise ArtifactError(f"checkpoint has no '{name}' state (has: {', '.join(payload['state'])})")
        obj.load_state_dict(payload["state"][name])


def identity(cfg: DictConfig | Mapping | None) -> dict:
    """What a computation is, for its resume files: the semantic config's hash and the
    fingerprint of the inputs the step has read so far (steps.core.provenance)."""
    return {"config_hash": config_hash(cfg) if isinstance(cfg, Mapping) else None,
            "inputs": provenance.inputs_fingerprint()}


def mismatch(recorded: Mapping | None, ident: Mapping) -> str | None:
    """Why a resume file recorded as `recorded` is not for the computation `ident`; None if it is."""
    if not isinstance(recorded, Mapping):
        return "it was written without a record of its config and inputs"
    if recorded.get("config_hash") != ident["config_hash"]:
        return f"it was written for another config (hash {recorded.get('config_hash')}, this run's is {ident['config_hash']})"
    if recorded.get("inputs") != ident["inputs"]:
        return "its input files have changed since it was written"
    return None


def set_aside(path: Path) -> Path:
    """Move a stale resume file to `<path>.stale` (one slot: it replaces an older one)."""
    stale = path.with_name(path.name + ".stale")
    os.replace(path, stale)
    return stale


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
        save(out_path, ..., meta={..., "train": loop.record()})   # rank 0 (loop.dist.main)
        loop.finish()                # after the final output is written: drop the resume file

    `dist` defaults to this process's place in the job (distributed.current()).
    """

    TRACE_POINTS = 1000  # the loss curve kept in record(): at most this many points

    def __init__(self, cfg: DictConfig, output: str | os.PathLike, total: int, desc: str | None = None,
                 dist: distributed.Dist | None = None, **objects):
        self.cfg, self.total, self.objects = cfg, total, objects
        self.dist = dist if dist is not None else distributed.current()
        self.output = Path(output)
        self.resume_path = self.output.with_name(self.output.name + ".resume.pt")
        self.every_steps = int(cfg.ckpt.every_steps)
        self.every_s = float(cfg.ckpt.every_s)
        self.start = 0
        self.info: dict = {}
        self.trace_every = max(1, -(-int(total) // self.TRACE_POINTS))
        self.trace: list[float] = []
        self.segments: list[dict] = []  # [{from_step, world_size, ...}], one per (re)start
        # What this computation is: a resume file written for anything else is not resumed.
        self.identity = identity(cfg)
        stale = self._resume() if self.resume_path.exists() else None
        if self.dist.world > 1:  # every rank must have read the same checkpoint
            lo, hi = self.dist.sum([-self.start, self.start])
            if -lo != self.start * self.dist.world or hi != self.start * self.dist.world:
                raise distributed.RankFailure(f"rank {self.dist.rank}: the ranks resumed from different steps; "
                                              f"is {self.resume_path.parent} on a filesystem every node shares?")
        if stale and self.dist.main:  # after every rank has looked at it
            set_aside(self.resume_path)
        self.segments.append({"from_step": self.start, **self.dist.record()})
        self.progress = Progress(total, desc or self.output.name, cfg.progress.every_s, initial=self.start)
        self._term = False
        self._stats: dict = {}
        self.step = self.start

    def _resume(self) -> str | None:
        """Restore the state of the resume file when it was written for this computation;
        otherwise log why not and return that reason. A corrupt or altered resume file is
        reported (ArtifactError), never silently discarded or overwritten."""
        found = verify_torch(self.resume_path, "resume checkpoint")
        why = mismatch((found.record or {}).get("resume"), self.identity) if found.sealed else None
        if why is None:
            payload = load(self.resume_path, "resume checkpoint")
            if not found.sealed:
                why = "it was written without a record of its config and inputs"
        if why is not None:
            log.info(f"not resuming {self.output} from {self.resume_path}: {why}; starting from step 0 "
                     f"(the old file is kept as {self.resume_path.name}.stale)")
            return why
        restore(payload, **self.objects)
        seeding.set_rng_state(payload["rng"])
        self.start = int(payload["step"])
        own = payload["state"].get("_loop") or {}
        self.trace = list(own.get("trace", []))
        self.segments = list(own.get("segments", []))
        before = self.segments[-1]["world_size"] if self.segments else "?"
        log.info(f"resuming {self.output} from step {self.start} ({self.resume_path}; written by "
                 f"{before} process(es), resumed on {self.dist.world})")
        return None

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
                due = done < self.total and (done % self.every_steps == 0 or time.monotonic() - last_save >= self.every_s)
                stop, due, stats = self._agree(self._term, due)
                self.progress.update(1, **stats)
                if "loss" in stats and step % self.trace_every == 0:
                    self.trace.append(float(stats["loss"]))
                if stop:
                    self.checkpoint(done)
                    raise Preempted(f"stopped by SIGTERM at step {done}/{self.total}; resume checkpoint {self.resume_path}")
                if due:
                    self.checkpoint(done)
                    last_save = time.monotonic()
            self.step = self.total
        finally:
            signal.signal(signal.SIGTERM, old)
            self.progress.close()

    def _agree(self, term: bool, due: bool) -> tuple[bool, bool, dict]:
        """(stop, checkpoint, stats) the same on every rank: stop when any rank got SIGTERM,
        checkpoint when rank 0's clock says so, numeric stats averaged over the ranks."""
        stats, self._stats = self._stats, {}
        if self.dist.world == 1:
            return term, due, stats
        numeric = [k for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        summed = self.dist.sum([float(term), float(due and self.dist.main), *(stats[k] for k in numeric)])
        stats.update({k: v / self.dist.world for k, v in zip(numeric, summed[2:], strict=True)})
        return summed[0] > 0, summed[1] > 0, stats

    def log(self, **stats) -> None:
        """This step's stats (e.g. loss=...); under several ranks the log shows their mean."""
        self._stats.update(stats)

    def describe(self, **info) -> None:
        """What the step trains with (precision, global/micro batch, ...) for record()."""
        self.info.update(info)

    def record(self) -> dict:
        """The training record for the output checkpoint's meta (and the metrics): the
        processes, devices, precision and batches actually used, and the loss curve."""
        now = self.segments[-1]
        return {**{k: v for k, v in now.items() if k != "from_step"}, **self.info, "steps": self.total,
                "segments": self.segments, "loss_trace": {"every": self.trace_every, "values": self.trace}}

    def checkpoint(self, step: int) -> None:
        if self.dist.main:
            own = {"trace": self.trace, "segments": self.segments}
            save_torch(self.resume_path, _payload(self.cfg, step, {**self.objects, "_loop": own}),
                       extra={"resume": self.identity})

    def finish(self) -> None:
        if self.dist.main:
            self.resume_path.unlink(missing_ok=True)


SUMMARY_KEYS = ("world_size", "nodes", "processes_per_node", "launcher", "backend", "device", "precision",
                "global_batch", "micro_batch", "accumulation_steps", "effective_batch", "stages", "steps")


def training_summary(record: Mapping | None) -> dict | None:
    """The part of a TrainLoop record a metrics file and the report show: processes, device,
    precision, batches, steps, and how many times the run was resumed."""
    if not record:
        return None
    out = {k: record[k] for k in SUMMARY_KEYS if k in record}
    segments = record.get("segments") or []
    out["resumed"] = max(0, len(segments) - 1)
    worlds = sorted({int(s["world_size"]) for s in segments if "world_size" in s})
    if len(worlds) > 1:
        out["world_sizes"] = worlds
    return out


def training_record(path: str | os.PathLike) -> dict | None:
    """The training record (meta.train) of a checkpoint written by a training step, read
    without loading its tensors into memory; None when it has none."""
    payload = load_torch(path, "checkpoint", weights_only=False, mmap=True)
    meta = (payload.get("state") or {}).get("meta") if isinstance(payload, dict) else None
    return meta.get("train") if isinstance(meta, dict) else None
