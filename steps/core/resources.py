"""Cluster resources of a rule, one convention for every paper (README, "Running on your cluster").

A paper's params (`resources:` in params/<paper>/<scale>.yaml) give, per phase,

    <phase>: {gpu: 1, gpu_model: a100, cpus_per_gpu: 8, mem_mb: 64000, runtime: 720, gpu_hours: 8}
    default: {mem_mb: 2000, runtime: 10}          # CPU numbers for phases not listed

and a rule declares them with Snakemake's standard resources, which the slurm executor turns
into sbatch flags: gpu → --gpus=N (gpu_model → --gpus=<type>:N), cpus_per_gpu →
--cpus-per-gpu, mem_mb → --mem, runtime (minutes) → -t. A GPU rule is one whose own section
asks for gpu > 0; `default` can never make a rule a GPU rule, so CPU rules never ask for one.
Locally the gpu resource limits nothing unless you pass `--resources gpu=N`.

The site file (workflow/profiles/slurm/site.yaml, the one file a cluster user edits) maps the
GPU models params name to the cluster's GRES type names and gives the account and QoS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from steps.core.errors import ConfigError

GPU_KEYS = ("gpu", "gpu_model", "cpus_per_gpu")
SIZE_KEYS = ("mem_mb", "runtime")
# Keys a resources section may hold: the Snakemake resources above, threads (Snakemake
# threads), gpu_hours (the estimate the report's accounting compares with what was measured).
KNOWN_KEYS = frozenset({*GPU_KEYS, *SIZE_KEYS, "threads", "gpu_hours"})
SITE_KEYS = frozenset({"account", "qos", "gpu_types", "partitions"})


def _section(table: Mapping, name: str) -> dict:
    sec = table.get(name) or {}
    if not isinstance(sec, Mapping):
        raise ConfigError(f"resources.{name} must be a mapping, not {sec!r}")
    unknown = sorted(set(sec) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in resources.{name}; valid: {', '.join(sorted(KNOWN_KEYS))}")
    return dict(sec)


def check_table(table: Mapping, phases) -> None:
    """Refuse a resources table naming a phase the paper does not have (a typo would silently
    leave a rule with the default numbers) or an unknown key."""
    unknown = sorted(set(table) - {"default", *phases})
    if unknown:
        raise ConfigError(f"resources: unknown phase(s) {', '.join(unknown)}; valid: default, {', '.join(sorted(phases))}")
    for name in table:
        rule_resources(table, name)


def gpus(table: Mapping, phase: str) -> int:
    """GPUs per job of `phase` (0: a CPU rule). Only the phase's own section counts."""
    return int(_section(table, phase).get("gpu") or 0)


def gpu_type(model: str | None, site: Mapping | None) -> str | None:
    """The cluster's GRES type for a GPU model named in params. A model the site does not list
    is used as it is; a model the site maps to null (or '') means any GPU type."""
    if not model:
        return None
    types = (site or {}).get("gpu_types") or {}
    if model in types:
        return types[model] or None
    return str(model)


def rule_resources(table: Mapping, phase: str, site: Mapping | None = None) -> dict:
    """The Snakemake resources of one phase's rule: mem_mb and runtime (the phase's, else
    `default`'s), and for a GPU rule gpu, cpus_per_gpu (default 1) and gpu_model (mapped
    through the site file; left out when any GPU will do)."""
    mine, default = _section(table, phase), _section(table, "default")
    leaked = [k for k in GPU_KEYS if default.get(k)]
    if leaked:
        raise ConfigError(f"resources.default may not set {', '.join(leaked)}: a GPU is asked for per phase only")
    out = {}
    for key in SIZE_KEYS:
        value = mine.get(key, default.get(key))
        if value is not None:
            out[key] = int(value)
    n = int(mine.get("gpu") or 0)
    if n > 0:
        out["gpu"] = n
        out["cpus_per_gpu"] = int(mine.get("cpus_per_gpu") or 1)
        model = gpu_type(mine.get("gpu_model"), site)
        if model:
            out["gpu_model"] = model
    elif any(mine.get(k) for k in ("gpu_model", "cpus_per_gpu")):
        raise ConfigError(f"resources.{phase} sets gpu_model or cpus_per_gpu but no gpu")
    return out


def load_site(path: str | os.PathLike) -> dict:
    """The site file: {account, qos, gpu_types, partitions}; missing keys are None/empty."""
    path = Path(path)
    if not path.is_file():
        return {"account": None, "qos": None, "gpu_types": {}, "partitions": {}}
    site = yaml.safe_load(path.read_text()) or {}
    if not isinstance(site, Mapping):
        raise ConfigError(f"{path} must be a YAML mapping")
    unknown = sorted(set(site) - SITE_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {path}; valid: {', '.join(sorted(SITE_KEYS))}")
    types = site.get("gpu_types") or {}
    if not isinstance(types, Mapping):
        raise ConfigError(f"gpu_types in {path} must map a model to a GRES type (or null)")
    return {"account": site.get("account"), "qos": site.get("qos"), "gpu_types": dict(types),
            "partitions": dict(site.get("partitions") or {})}


def site_env(site: Mapping) -> dict[str, str]:
    """Environment for every sbatch call: SLURM reads SBATCH_ACCOUNT and SBATCH_QOS as if they
    were -A and --qos, so the site's account and QoS reach every job, whichever rule file
    defines it. Empty when the site leaves them to SLURM's defaults."""
    env = {}
    if site.get("account"):
        env["SBATCH_ACCOUNT"] = str(site["account"])
    if site.get("qos"):
        env["SBATCH_QOS"] = str(site["qos"])
    return env


def check_job(table: Mapping, phase: str, job: Mapping, site: Mapping | None = None) -> list[str]:
    """How a planned job's resources (as Snakemake reports them) break the convention: a GPU
    rule carries exactly its params' gpu, gpu_model, cpus_per_gpu, mem_mb and runtime; a CPU
    rule asks for no GPU. Returns one line per problem (empty: conforms)."""
    want = rule_resources(table, phase, site)
    problems = [f"{phase}: {key}={job.get(key)} but params say {want[key]}"
                for key in SIZE_KEYS if key in want and str(job.get(key)) != str(want[key])]
    if want.get("gpu"):
        for key in ("gpu", "cpus_per_gpu"):
            if str(job.get(key)) != str(want[key]):
                problems.append(f"{phase}: {key}={job.get(key)} but params say {want[key]}")
        if job.get("gpu_model") != want.get("gpu_model"):
            problems.append(f"{phase}: gpu_model={job.get('gpu_model')} but params (and the site file) say {want.get('gpu_model')}")
    else:
        for key in (*GPU_KEYS, "gpus", "gres"):
            if job.get(key) not in (None, 0, "0", ""):
                problems.append(f"{phase}: a CPU rule asks for {key}={job[key]}")
    return problems
