# Glue only (STYLE R6): the registry, the scale, per-paper config and resources, and the hooks
# that keep reruns honest. Logic lives in steps/core and is unit-tested there.
#
# Parse time does not grow with the work: each paper's config is composed by Hydra once and
# cached on disk as plain JSON (steps.core.config), rerun triggers and step arguments are
# computed once per phase, and what each step module imports is cached too (steps.core.sources).
import functools
import json
import os
import shlex
import sys

import yaml

from steps.core import config as pzconfig
from steps.core import resources as pzresources
from steps.core import sources as pzsources
from steps.core import stale as pzstale
from steps.core import step_errors as pzstep_errors
from steps.core import targets as pztargets
from steps.core.errors import ConfigError

# Jobs run `python` from the environment Snakemake runs in (a venv need not be activated).
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
PAPERS = yaml.safe_load(open(workflow.source_path("../papers.yaml")))["papers"]
SCALE = str(config.get("scale", "mini"))
if SCALE not in pzconfig.SCALES:
    sys.exit(f"error: unknown scale '{SCALE}'; valid: {', '.join(pzconfig.SCALES)}")

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


def _guard(fn, *args, **kwargs):
    """Call fn; a ConfigError stops the run before any job with one line `error: ...`."""
    try:
        return fn(*args, **kwargs)
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
# Each paper's composed and checked config: plain trees with attribute access (CFG["x"].seeds).
CFG = {p: pzconfig.attrs(_guard(pzconfig.resolve, p, SCALE, overrides(p))) for p in PAPERS}


@functools.cache
def trigger_value(paper, phase):
    """The params trigger of a rule, the config sections its phase reads as JSON (a change reruns it)."""
    return _guard(pzconfig.trigger, paper, SCALE, overrides(paper), phase)


def trigger(paper, phase):
    # A function, so Snakemake does not read the braces in the JSON as wildcards.
    return lambda wildcards: trigger_value(paper, phase)


@functools.cache
def step_args_value(paper, phase):
    """The scale and the user's overrides that change what `phase` computes, quoted for the
    shell; they are part of the rule's params, so they rerun it when they change."""
    mine, _ = _guard(pzconfig.split_overrides, paper, SCALE, overrides(paper), phase)
    return " ".join(shlex.quote(a) for a in [f"scale={SCALE}", *mine])


def step_args(paper, phase):
    return lambda wildcards: step_args_value(paper, phase)


# Every paper's overrides reach its steps through the environment (steps.core.cli.load): a step
# composes the same cached config as this Snakefile (one Hydra composition for the whole run),
# and the operational ones (threads, device, progress, ckpt, dist) never rerun anything.
os.environ["PAPERZOO_OVERRIDES"] = json.dumps({p: overrides(p) for p in PAPERS if overrides(p)})


# The cluster's site file (the one file a SLURM user edits): GPU type names, account, QoS and
# partitions. Its account and QoS reach every sbatch call through the environment.
SITE = _guard(pzresources.load_site, workflow.source_path("../profiles/slurm/site.yaml"))
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


for _p in PAPERS:  # a typo in a resources table stops the run before any job
    _guard(pzresources.check_table, CFG[_p].get("resources", {}), CFG[_p].reads)


def rule_resources(paper, phase, launch=False):
    """Snakemake resources of a phase's rule (mem_mb, runtime; gpu, gpu_model, cpus_per_gpu for
    a GPU rule) from params/<paper> resources, by the convention of steps.core.resources:
    `resources: **rule_resources(paper, phase)`. A training rule passes launch=True and starts
    its step with `{resources.launch} -m steps.<paper>.<phase> ...`: plain python for one
    process, torchrun over the GPUs of a node, srun over nodes (steps.core.distributed), with
    the SLURM request (nodes, tasks, GPUs per node, CPUs per GPU) that matches."""
    return _guard(pzresources.rule_resources, CFG[paper].get("resources", {}), phase, SITE,
                  launched=launch, shutdown_s=float(CFG[paper].dist.shutdown_s))


def scale_stamp(paper):
    """data/<paper>/scale.txt: the scale the paper's outputs are built at (rule scale_stamp)."""
    return f"data/{paper}/scale.txt"


def code(*modules, scale_free=False):
    """Source files of the step modules run by a rule and of every steps.* module they import
    (steps.core.sources): editing any of them reruns the rule, with Snakemake and with DVC.
    Also the paper's scale stamp (the paper of the first steps.<paper>.* module), so that
    switching scale rebuilds the rule; a rule whose output does not depend on the scale (a
    download) passes scale_free=True."""
    files = pzsources.sources(*modules)
    papers = [m.split(".")[1] for m in modules if m.count(".") >= 2 and m.split(".")[1] in PAPERS]
    return files if scale_free or not papers else [*files, scale_stamp(papers[0])]


def per_seed(paper, pattern):
    """`pattern` expanded over the paper's training seeds at this scale."""
    return expand(pattern, seed=[int(s) for s in CFG[paper].seeds])


def on_start():
    """When a run starts, remove what it makes stale (steps.core.stale), so that a killed or
    failed job is redone, with everything below it, by the same command rerun."""
    pzstale.remove_stale(workflow, say=lambda msg: print(msg, file=sys.stderr))


# A failed step's own one-line error is printed under Snakemake's "Error in rule ...".
pzstep_errors.install()


def check_targets():
    """Called at the end of the Snakefile, once every rule is known. An unknown target named on
    the command line stops with the list of papers."""
    rules = [r.name for r in workflow.rules]
    for t in pztargets.check_argv(sys.argv, rules):
        sys.exit(f"error: {pztargets.message(t, PAPERS, rules)}")
