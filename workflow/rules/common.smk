# Glue only (STYLE R6): the registry, the scale, per-paper config and resources. Logic lives in
# steps/core and is unit-tested there.
import shlex
import sys

import yaml

from steps.core import config as pzconfig
from steps.core.errors import ConfigError

PY = sys.executable
PAPERS = yaml.safe_load(open(workflow.source_path("../papers.yaml")))["papers"]
SCALE = str(config.get("scale", "mini"))


wildcard_constraints:
    paper="|".join(PAPERS),
    seed=r"\d+",


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
unknown = sorted(set(config) - {"scale", *PAPERS})
if unknown:
    sys.exit(f"error: unknown --config key(s) {', '.join(unknown)}; valid: scale, {', '.join(PAPERS)}")
CFG = {p: _compose(p) for p in PAPERS}


def trigger_value(paper, phase):
    """A rule's params trigger: the config sections its phase reads, as JSON (reruns on change)."""
    try:
        return pzconfig.trigger(paper, SCALE, overrides(paper), phase)
    except ConfigError as e:
        sys.exit(f"error: {e}")


def trigger(paper, phase):
    # A function, so Snakemake does not read the braces in the JSON as wildcards.
    return lambda wildcards: trigger_value(paper, phase)


def step_args_value(paper):
    """The scale and the user's overrides, quoted for the shell."""
    return " ".join(shlex.quote(a) for a in [f"scale={SCALE}", *overrides(paper)])


def step_args(paper):
    return lambda wildcards: step_args_value(paper)


def res(paper, rule, key, default=None):
    """A rule's resource from params/<paper>: resources.<rule>.<key>, else resources.default.<key>."""
    r = CFG[paper].get("resources", {})
    for section in (rule, "default"):
        if section in r and key in r[section]:
            return r[section][key]
    return default


def code(*modules):
    """Source files of the step modules a rule runs: editing them reruns the rule."""
    return [m.replace(".", "/") + ".py" for m in modules]
