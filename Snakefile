# paperzoo: each paper a DAG of steps at three scales (DESIGN.md).
#   snakemake -c all results/instaflow/report.md            # one paper, mini scale (default)
#   snakemake -c all --config scale=smoke                   # every paper, smoke scale
#   snakemake -c all instaflow --config instaflow="reflow.steps=2000"   # override a parameter
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"


envvars:
    "PATH",
    "PAPERZOO_OPERATIONAL",  # set by common.smk: operational overrides for the steps


wildcard_constraints:
    paper="|".join(PAPERS),
    seed=r"\d+",


# InstaFlow: the miniature DAG at smoke/mini, Stable Diffusion 1.5 on a cluster at full.
include: "workflow/rules/instaflow_full.smk" if SCALE == "full" else "workflow/rules/instaflow.smk"
include: "workflow/rules/rsb_dense.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/{paper}/report.md", paper=PAPERS),
        "results/index.md",
    default_target: True
