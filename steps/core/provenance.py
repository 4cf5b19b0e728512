"""Where an artifact comes from: the step context, and the record every artifact carries.

`steps.core.cli.run` opens a step context for its process (`open_step`): paper, scale, phase,
the config hash, the step's command-line overrides that change what it computes, and a job
record (an id, the outputs written so far, wall time since the process started, peak RSS).

* Writing. Every artifact written through steps.core (npz, parquet, torch files, metrics JSON)
  stores `record(path)`:

      {"paper": "instaflow", "scale": "mini", "phase": "teacher", "config_hash": "<16 hex>",
       "job": "<id>", "jobs": [<job record>, ...]}

  where `jobs` is this job and, carried forward through the artifacts it read, every job
  upstream of it (a job record: id, paper, phase, config_hash, overrides, seeds when the job
  trained or evaluated seeds, outputs, wall_s since its process started, max_rss_mb). A metrics
  file built from it can thus state which jobs made it, with which seeds, at what cost.
* Reading. Every read through steps.core calls `note_read`: an artifact recorded at another
  scale than the step's is refused with an ArtifactError naming both scales and the command that
  rebuilds it at this scale; otherwise its jobs are carried forward and its digest joins the
  step's input fingerprint (`inputs_fingerprint`, which steps.core.checkpoint.TrainLoop compares
  before it resumes).
* An artifact without a record (user-provided data, files written before records existed) is
  accepted as it is. Without a context (a test calling `main(cfg)` directly) nothing is checked
  and artifacts carry no record.

Only the standard library is imported here: every step loads this module.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass, field

from steps.core.errors import ArtifactError

DEFAULT_SCALE = "mini"  # the scale Snakemake and the step CLI use when none is given
JOB_KEYS = ("id", "paper", "phase", "config_hash", "overrides", "seeds", "outputs", "wall_s", "max_rss_mb")


@dataclass
class StepContext:
    paper: str
    scale: str
    phase: str
    config_hash: str
    overrides: list[str]
    started: float  # epoch seconds at which the process started
    seeds: list[int] | None = None  # the training seeds this job computed with, if any
    job: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    outputs: list[str] = field(default_factory=list)
    upstream: dict[str, dict] = field(default_factory=dict)  # job id -> job record
    digests: dict[str, str] = field(default_factory=dict)  # path read -> its digest

    def job_record(self) -> dict:
        rec = {"id": self.job, "paper": self.paper, "phase": self.phase, "config_hash": self.config_hash,
               "overrides": list(self.overrides)}
        if self.seeds is not None:
            rec["seeds"] = list(self.seeds)
        return {**rec, "outputs": list(self.outputs), "wall_s": round(time.time() - self.started, 2),
                "max_rss_mb": _max_rss_mb()}

    def jobs(self) -> list[dict]:
        """Every job upstream (in the order first met), then this one."""
        return merge_jobs([*self.upstream.values(), self.job_record()])


_CURRENT: StepContext | None = None


def open_step(paper: str, scale: str, phase: str, config_hash: str, overrides=(), process_age_s: float = 0.0,
              seeds=None) -> StepContext:
    """Start this process's step context (steps.core.cli.run); `process_age_s` is how long the
    process has run already (its imports), so that wall_s is the job's whole time."""
    global _CURRENT
    _CURRENT = StepContext(paper, scale, phase, config_hash, [str(o) for o in overrides], time.time() - process_age_s,
                           None if seeds is None else [int(s) for s in seeds])
    return _CURRENT


def close_step() -> None:
    global _CURRENT
    _CURRENT = None


def current() -> StepContext | None:
    return _CURRENT


def scale() -> str | None:
    """The running step's scale, None outside a step."""
    return _CURRENT.scale if _CURRENT is not None else None


def record(path: str | os.PathLike) -> dict | None:
    """The record an artifact written now at `path` carries (None outside a step); `path`
    joins this job's outputs."""
    ctx = _CURRENT
    if ctx is None:
        return None
    p = str(path)
    if p not in ctx.outputs:
        ctx.outputs.append(p)
    return {"paper": ctx.paper, "scale": ctx.scale, "phase": ctx.phase, "config_hash": ctx.config_hash,
            "job": ctx.job, "jobs": ctx.jobs()}


def note_read(path: str | os.PathLike, what: str, rec: dict | None, digest: str | None = None) -> None:
    """Account for an artifact read by the running step: refuse one built at another scale,
    carry its jobs forward, remember its digest for the input fingerprint."""
    ctx = _CURRENT
    if ctx is None:
        return
    if isinstance(rec, dict):
        built = rec.get("scale")
        if built and built != ctx.scale:
            raise ArtifactError(
                f"{what} {path} was built at scale {built}, but this step runs at scale {ctx.scale}; "
                f"rebuild it at {ctx.scale} with `{rebuild_command(path, ctx.scale)}` "
                f"(or run the step with scale={built})")
        for job in rec.get("jobs") or []:
            if isinstance(job, dict) and job.get("id") and job["id"] != ctx.job:
                known = ctx.upstream.get(job["id"])
                ctx.upstream[job["id"]] = merge_jobs([known, job])[0] if known else dict(job)
        own = rec.get("paper") == ctx.paper and rec.get("phase") == ctx.phase
    else:
        own = False
    # An artifact of this same step (an earlier output it reads back) is no input of it.
    if digest is not None and not own:
        ctx.digests[str(path)] = digest


def inputs_fingerprint() -> str | None:
    """A digest of the artifacts the running step has read so far (their recorded digests,
    whatever their paths), None outside a step."""
    ctx = _CURRENT
    if ctx is None:
        return None
    h = hashlib.sha256()
    for d in sorted(set(ctx.digests.values())):
        h.update(d.encode() + b"\n")
    return h.hexdigest()[:32]


def rebuild_command(path: str | os.PathLike, at_scale: str | None = None) -> str:
    """`snakemake -c all --force <path>`, with `--config scale=<s>` unless the scale is the default."""
    s = at_scale if at_scale is not None else scale()
    cmd = f"snakemake -c all --force {path}"
    return cmd + (f" --config scale={s}" if s and s != DEFAULT_SCALE else "")


def merge_jobs(jobs) -> list[dict]:
    """Job records merged by id, in first-seen order: a job seen through several of its
    outputs counts once, with all those outputs and its longest wall time."""
    out: dict[str, dict] = {}
    for job in jobs:
        if not job:
            continue
        known = out.get(job["id"])
        if known is None:  # one key order, however the record was stored
            ordered = {k: job[k] for k in JOB_KEYS if k in job}
            out[job["id"]] = {**ordered, **job, "outputs": list(job.get("outputs") or [])}
            continue
        known["outputs"] += [o for o in job.get("outputs") or [] if o not in known["outputs"]]
        for key in ("wall_s", "max_rss_mb"):
            vals = [v for v in (known.get(key), job.get(key)) if v is not None]
            known[key] = max(vals) if vals else None
    return list(out.values())


def run_overrides(jobs) -> list[str]:
    """The overrides of a run: those of each of its jobs, once each, in order."""
    seen: list[str] = []
    for job in jobs:
        seen += [o for o in job.get("overrides") or [] if o not in seen]
    return seen


def run_seeds(jobs) -> list[int] | None:
    """The training seeds of a run: those its jobs computed with; None when none says."""
    said = [job["seeds"] for job in jobs if job.get("seeds") is not None]
    return sorted({int(s) for seeds in said for s in seeds}) if said else None


def _max_rss_mb() -> float | None:
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    except (ImportError, OSError):
        return None
