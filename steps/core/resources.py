"""Cluster resources of a rule, one convention for every paper (README, "Running on your cluster").

A paper's params (`resources:` in params/<paper>/<scale>.yaml) give, per phase,

    <phase>: {gpu: 1, gpu_model: a100, cpus_per_gpu: 8, mem_mb: 64000, runtime: 720, gpu_hours: 8}
    default: {mem_mb: 2000, runtime: 10}          # CPU numbers for phases not listed

and a rule declares them with Snakemake's standard resources, which the slurm executor turns
into sbatch flags: gpu → --gpus=N (gpu_model → --gpus=<type>:N), cpus_per_gpu →
--cpus-per-gpu, mem_mb → --mem, runtime (minutes) → -t. A GPU rule is one whose own section
asks for gpu > 0; `default` can never make a rule a GPU rule, so CPU rules never ask for one.
Locally the gpu resource limits nothing unless you pass `--resources gpu=N`.

A rule that launches a distributed step (a training phase: `rule_resources(..., launched=True)`)
starts one process per GPU (steps.core.distributed): `gpu` is then the GPUs of each node,
`nodes` (default 1) the nodes, `launcher` auto | torchrun | srun. Its resources also carry
`launch`, the command prefix of its shell command (`{resources.launch} -m steps...`: python,
torchrun or srun), so the job's SLURM request and the processes it starts come from one place.
On one node (torchrun) the request is the one above plus `nodes` = 1 (--nodes=1: --gpus=N counts
the job's GPUs, which SLURM could otherwise spread over nodes); across nodes (srun) it is `nodes` →
--nodes, `tasks_per_node` → --ntasks-per-node, the GPUs of each node as `gres` →
--gres=gpu[:<type>]:<gpu> and `mpi` (the executor then lets the rule's own srun start the tasks).
Resources are no rerun trigger, so changing the GPU count reruns nothing (a training step
resumes from its checkpoint on any number of processes).

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
LAUNCH_KEYS = ("nodes", "launcher")
SIZE_KEYS = ("mem_mb", "runtime")
# Keys a resources section may hold: the Snakemake resources above, threads (Snakemake
# threads), gpu_hours (the estimate the report's accounting compares with what was measured),
# nodes and launcher (the process geometry of a distributed step, steps.core.distributed).
KNOWN_KEYS = frozenset({*GPU_KEYS, *LAUNCH_KEYS, *SIZE_KEYS, "threads", "gpu_hours"})
# Snakemake resources a GPU job may carry (what a CPU rule must never ask for).
JOB_GPU_KEYS = (*GPU_KEYS, "gpus", "gres", "nodes", "tasks_per_node", "tasks", "tasks_per_gpu", "mpi")
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
    for name in table:  # keys and the process geometry; a single-process rule refuses nodes itself
        rule_resources(table, name, launched=True)


def gpus(table: Mapping, phase: str) -> int:
    """GPUs per job of `phase` (gpu × nodes; 0: a CPU rule). Only the phase's own section counts."""
    sec = _section(table, phase)
    return int(sec.get("gpu") or 0) * int(sec.get("nodes") or 1)


def gpu_type(model: str | None, site: Mapping | None) -> str | None:
    """The cluster's GRES type for a GPU model named in params. A model the site does not list
    is used as it is; a model the site maps to null (or '') means any GPU type."""
    if not model:
        return None
    types = (site or {}).get("gpu_types") or {}
    if model in types:
        return types[model] or None
    return str(model)


def rule_resources(table: Mapping, phase: str, site: Mapping | None = None, launched: bool = False,
                   shutdown_s: float = 240.0) -> dict:
    """The Snakemake resources of one phase's rule: mem_mb and runtime (the phase's, else
    `default`'s), and for a GPU rule gpu, cpus_per_gpu (default 1) and gpu_model (mapped
    through the site file; left out when any GPU will do). With `launched` (the rule starts a
    distributed step) also `launch`, and across nodes the SLURM geometry (module docstring)."""
    from steps.core import distributed

    mine, default = _section(table, phase), _section(table, "default")
    leaked = [k for k in (*GPU_KEYS, *LAUNCH_KEYS) if default.get(k)]
    if leaked:
        raise ConfigError(f"resources.default may not set {', '.join(leaked)}: a GPU is asked for per phase only")
    out = {}
    for key in SIZE_KEYS:
        value = mine.get(key, default.get(key))
        if value is not None:
            out[key] = int(value)
    n = int(mine.get("gpu") or 0)
    model = None
    if n > 0:
        out["gpu"] = n
        out["cpus_per_gpu"] = int(mine.get("cpus_per_gpu") or 1)
        model = gpu_type(mine.get("gpu_model"), site)
        if model:
            out["gpu_model"] = model
    elif any(mine.get(k) for k in ("gpu_model", "cpus_per_gpu")):
        raise ConfigError(f"resources.{phase} sets gpu_model or cpus_per_gpu but no gpu")
    if not launched:
        if int(mine.get("nodes") or 1) > 1 or (mine.get("launcher") or "auto") != "auto":
            raise ConfigError(f"resources.{phase} sets nodes or launcher, but its rule starts a single process "
                              "(only training rules launch distributed steps)")
        return out
    try:
        geo = distributed.geometry(mine)
        out["launch"] = distributed.launch_command(mine, shutdown_s)
    except ConfigError as e:
        raise ConfigError(f"resources.{phase}: {e}") from None
    if geo["launcher"] == "torchrun":  # --gpus=N is the job's total: keep them on the node torchrun runs on
        out["nodes"] = 1
    if geo["launcher"] == "srun":  # several tasks in one allocation, started by the rule's srun
        del out["gpu"]
        out.pop("gpu_model", None)
        out["gres"] = f"gpu:{model}:{n}" if model else f"gpu:{n}"  # GRES count: per node
        out["nodes"] = geo["nodes"]
        out["mpi"] = "srun"
        if geo["procs_per_node"] > 1:
            out["tasks_per_node"] = geo["procs_per_node"]
        else:  # the executor wants tasks_per_node > 1: one task per GPU, counted per job instead
            out["tasks"] = geo["world"]
            out["tasks_per_gpu"] = 1
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
    rule carries exactly its params' gpu, gpu_model, cpus_per_gpu, mem_mb and runtime (and a
    launched rule the geometry its `launch` starts); a CPU rule asks for no GPU. Returns one
    line per problem (empty: conforms)."""
    from steps.core import distributed

    launched = "launch" in job
    want = rule_resources(table, phase, site, launched=launched)
    problems = [f"{phase}: {key}={job.get(key)} but params say {want[key]}"
                for key in SIZE_KEYS if key in want and str(job.get(key)) != str(want[key])]
    if launched and distributed.parse_launch(str(job["launch"])) != distributed.parse_launch(want["launch"]):
        problems.append(f"{phase}: launch={job['launch']!r} but params say {want['launch']!r}")
    if any(k in want for k in JOB_GPU_KEYS):
        for key in JOB_GPU_KEYS:
            if key == "gpu_model":
                if job.get(key) != want.get(key):
                    problems.append(f"{phase}: gpu_model={job.get(key)} but params (and the site file) say {want.get(key)}")
            elif str(job.get(key)) != str(want.get(key)) and not (key not in want and job.get(key) in (None, 0, "0", "")):
                problems.append(f"{phase}: {key}={job.get(key)} but params say {want.get(key)}")
    else:
        for key in (*JOB_GPU_KEYS, "gpus", "gres"):
            if job.get(key) not in (None, 0, "0", ""):
                problems.append(f"{phase}: a CPU rule asks for {key}={job[key]}")
    return problems
