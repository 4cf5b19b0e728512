# Glue only (STYLE R6): the registry, the scale, per-paper config and resources. Logic lives in
# steps/core and is unit-tested there.
import json
import os
import shlex
import sys

import yaml
from omegaconf import OmegaConf

from steps.core import config as pzconfig
from steps.core import resources as pzresources
from steps.core import sources as pzsources
from steps.core.errors import ConfigError

# Jobs run `python` from the environment Snakemake runs in (a venv need not be activated).
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
PAPERS = yaml.safe_load(open(workflow.source_path("../papers.yaml")))["papers"]
SCALE = str(config.get("scale", "mini"))

# Each paper's rules file at this scale, relative to the Snakefile that includes it:
# rules/<paper>_full.smk at full scale where it exists (a different DAG for the real setting),
# else rules/<paper>.smk.
PAPER_RULES = {
    p: f"workflow/rules/{p}_full.smk"
    if SCALE == "full" and os.path.exists(os.path.join(workflow.basedir, f"workflow/rules/{p}_full.smk"))
    else f"workflow/rules/{p}.smk"
    for p in PAPERS
}


def overrides(paper):
    """The user's overrides for a paper: --config <paper>="a.b=1 c=2" (or a YAML list)."""
    ov = config.get(paper, [])
    return ov.split() if isinstance(ov, str) else [str(o) for o in ov]


def _compose(paper, phase=None):
    try:
        return pzconfig.compose(paper, SCALE, overrides(paper), phase=phase)
    except ConfigError as e:
        sys.exit(f"error: {e}")


# Validate the scale and every paper's overrides now, before any job starts.
unknown = sorted(set(config) - {"scale", "papers", *PAPERS})
if unknown:
    sys.exit(f"error: unknown --config key(s) {', '.join(unknown)}; valid: scale, papers, {', '.join(PAPERS)}")


def _selected(value):
    """--config papers=a,b: the papers the default target and results/index.md wait for (default: all)."""
    names = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    names = [n.strip() for n in names if n.strip()]
    bad = [n for n in names if n not in PAPERS]
    if bad or not names:
        sys.exit(f"error: --config papers={value!r}: unknown paper(s) {', '.join(bad) or '(none given)'}; "
                 f"valid: {', '.join(PAPERS)}")
    return names


SELECTED = _selected(config["papers"]) if "papers" in config else list(PAPERS)
CFG = {p: _compose(p) for p in PAPERS}


def trigger_value(paper, phase):
    """The params trigger of a rule, the config sections its phase reads as JSON (a change reruns it)."""
    try:
        return pzconfig.trigger(paper, SCALE, overrides(paper), phase)
    except ConfigError as e:
        sys.exit(f"error: {e}")


def trigger(paper, phase):
    # A function, so Snakemake does not read the braces in the JSON as wildcards.
    return lambda wildcards: trigger_value(paper, phase)


def step_args_value(paper, phase):
    """The scale and the user's overrides that change what `phase` computes, quoted for the
    shell; they are part of the rule's params, so they rerun it when they change."""
    try:
        mine, _ = pzconfig.split_overrides(paper, SCALE, overrides(paper), phase)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    return " ".join(shlex.quote(a) for a in [f"scale={SCALE}", *mine])


def step_args(paper, phase):
    return lambda wildcards: step_args_value(paper, phase)


# Operational overrides (threads, device, progress, ckpt) reach every step of the paper through
# the environment, so that they never rerun anything (steps.core.cli.load reads this).
os.environ["PAPERZOO_OPERATIONAL"] = json.dumps(
    {p: pzconfig.split_overrides(p, SCALE, overrides(p), next(iter(CFG[p].reads)))[1] for p in PAPERS}
)


# The cluster's site file (the one file a SLURM user edits): GPU type names, account, QoS and
# partitions. Its account and QoS reach every sbatch call through the environment.
try:
    SITE = pzresources.load_site(workflow.source_path("../profiles/slurm/site.yaml"))
except ConfigError as e:
    sys.exit(f"error: {e}")
os.environ.update(pzresources.site_env(SITE))


def res(paper, rule, key, default=None):
    """The resource <key> of a rule, from params/<paper> (resources.<rule>.<key>, else
    resources.default.<key>); a gpu_model is the site file's GRES type for that model."""
    r = CFG[paper].get("resources", {})
    for section in (rule, "default"):
        if section in r and key in r[section]:
            value = r[section][key]
            return pzresources.gpu_type(value, SITE) if key == "gpu_model" else value
    return default


def _resources_table(paper):
    return OmegaConf.to_container(CFG[paper].get("resources", {}), resolve=True)


try:  # a typo in a resources table stops the run before any job
    for _p in PAPERS:
        pzresources.check_table(_resources_table(_p), CFG[_p].reads)
except ConfigError as e:
    sys.exit(f"error: {e}")


def rule_resources(paper, phase, launch=False):
    """Snakemake resources of a phase's rule (mem_mb, runtime; gpu, gpu_model, cpus_per_gpu for
    a GPU rule) from params/<paper> resources, by the convention of steps.core.resources:
    `resources: **rule_resources(paper, phase)`. A training rule passes launch=True and starts
    its step with `{resources.launch} -m steps.<paper>.<phase> ...`: plain python for one
    process, torchrun over the GPUs of a node, srun over nodes (steps.core.distributed), with
    the SLURM request (nodes, tasks, GPUs per node, CPUs per GPU) that matches."""
    try:
        return pzresources.rule_resources(_resources_table(paper), phase, SITE, launched=launch,
                                          shutdown_s=float(CFG[paper].dist.shutdown_s))
    except ConfigError as e:
        sys.exit(f"error: {e}")


def code(*modules):
    """Source files of the step modules run by a rule and of every steps.* module they import
    (steps.core.sources): editing any of them reruns the rule, with Snakemake and with DVC."""
    return pzsources.sources(*modules)


def per_seed(paper, pattern):
    """`pattern` expanded over the paper's training seeds at this scale."""
    return expand(pattern, seed=[int(s) for s in CFG[paper].seeds])
