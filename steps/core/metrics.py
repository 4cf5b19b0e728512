"""Metrics files: results/<paper>/<metric>.json, one schema (workflow/schemas/metrics.schema.json),
validated when written. Values form a tree whose keys are identifiers, so claims can name them
(`fid.one_step.instaflow_long.mean`).

Written inside a step (steps.core.cli.run), a metrics file also states the run it measures
(steps.core.provenance), so that the report can say exactly which run it reports:

* `jobs`: every job that produced it, one line each — the step itself and, carried forward
  through the artifacts it read, every job upstream (id, paper, phase, config_hash, overrides,
  seeds, outputs, wall_s, max_rss_mb);
* `overrides`: the command-line overrides of those jobs that changed what they computed
  (e.g. `seeds=[3,4,5]`), once each.

Reading one inside a step refuses it when it was measured at another scale than the step's.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from steps.core import provenance
from steps.core.config import config_hash, repo_root
from steps.core.errors import PaperzooError
from steps.core.io import write_text


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads((repo_root() / "workflow" / "schemas" / "metrics.schema.json").read_text())


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """HEAD's short hash, `+dirty` when the tree has changes; `unknown` outside git."""
    root = repo_root()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def summary(values: Sequence[float]) -> dict:
    """{mean, std, per_seed} of per-seed values (population std; 0 for one value)."""
    vals = [float(v) for v in values]
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    return {"mean": mean, "std": std, "per_seed": vals}


def validate(record: dict) -> None:
    import jsonschema

    try:
        jsonschema.validate(record, schema())
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "top level"
        raise PaperzooError(f"metrics record invalid at {where}: {e.message}") from None


def write(
    path: str | os.PathLike,
    cfg: DictConfig,
    metric: str,
    description: str,
    values: dict,
    wall_time_s: float,
    device: str,
    extra: dict | None = None,
    accounting: Sequence[str] = (),
) -> dict:
    """Validate and atomically write one metrics file; returns the record.

    `accounting`: paths under `values` (`size_ratio.int4`, or a whole node `size_ratio`; `*`
    stands for any one key, `*.fstd.calls`) that are arithmetic of the setup (fixed by the
    config, e.g. a size ratio from bit widths), not measurements: a claim may show them (kind
    `accounting`) but never count them as a finding (steps.core.report refuses a `claim` with a
    comparison of only such values). Pass a literal or a module-level constant (`ACCOUNTING`),
    never a list built at run time: tests/test_claims.py reads every step's declarations
    without running it (steps.core.declared) to check every paper's claims, full scale included."""
    record = {
        "paper": cfg.paper,
        "scale": cfg.scale,
        "metric": metric,
        "description": description,
        "values": _clean(values),
        "seeds": [int(s) for s in cfg.seeds],
        "config_hash": config_hash(cfg),
        "git_revision": git_revision(),
        "wall_time_s": round(float(wall_time_s), 3),
        "device": device,
    }
    if extra:
        record["extra"] = _clean(extra)
    if accounting:
        record["accounting"] = sorted(str(a) for a in accounting)
    made = provenance.record(path)
    if made is not None:
        record["overrides"] = provenance.run_overrides(made["jobs"])
        record["jobs"] = made["jobs"]
    validate(record)
    write_text(path, dumps(record))
    return record


def dumps(record: dict) -> str:
    """The record as indented JSON, each job record on one line (a run can have hundreds)."""
    jobs = record.get("jobs")
    if not jobs:
        return json.dumps(record, indent=2) + "\n"
    head = json.dumps({k: v for k, v in record.items() if k != "jobs"}, indent=2)
    lines = ",\n".join("    " + json.dumps(j, separators=(", ", ": ")) for j in jobs)
    return head[:-2] + ',\n  "jobs": [\n' + lines + "\n  ]\n}\n"


def is_accounting(metric: str, record: dict, path: str) -> bool:
    """Is `<metric>.<path...>` (a claim's metric path) arithmetic of the setup, as the step that
    wrote `record` declared?"""
    key = path[len(metric) + 1:] if path.startswith(metric + ".") else None
    return key is not None and declares(record.get("accounting") or (), key)


def declares(accounting: Sequence[str], key: str) -> bool:
    """Does a declaration (`size_ratio`, `*.fstd.calls`: `*` is any one key) cover the path
    `key` under values, itself or a node above it?"""
    import fnmatch

    parts = key.split(".")
    for a in accounting:
        pat = a.split(".")
        if len(pat) <= len(parts) and all(fnmatch.fnmatchcase(k, p) for k, p in zip(parts, pat, strict=False)):
            return True
    return False


def read(path: str | os.PathLike) -> dict:
    """A metrics file, validated; inside a step, one measured at another scale is refused."""
    import hashlib

    from steps.core.io import read_json

    record = read_json(path, "metrics file")
    validate(record)
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    provenance.note_read(path, "metrics file", record, digest)
    return record


def _clean(obj):
    """JSON-safe: numpy scalars to floats, NaN/inf to null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "item"):
        obj = obj.item()
    if isinstance(obj, int):
        return obj
    f = float(obj)
    return f if math.isfinite(f) else None


def metrics_paths(results_dir: str | os.PathLike) -> list[Path]:
    return sorted(Path(results_dir).glob("*.json"))
