# paperzoo: each paper a DAG of steps at three scales (DESIGN.md).
#   snakemake -c all results/instaflow/report.md            # one paper, mini scale (default)
#   snakemake -c all --config scale=smoke                   # every paper, smoke scale
#   snakemake -c all --config papers=instaflow,monolith     # some papers and the index
#   snakemake -c all instaflow --config instaflow="reflow.steps=2000"   # override a parameter
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"


envvars:
    "PATH",
    "PAPERZOO_OVERRIDES",  # set by common.smk: each paper's --config overrides, for its steps


wildcard_constraints:
    paper="|".join(PAPERS),
    seed=r"\d+",


# Each registered paper's DAG (workflow/papers.yaml): workflow/rules/<paper>.smk, or
# <paper>_full.smk at full scale where a paper has one (InstaFlow: Stable Diffusion 1.5).
for _paper in PAPERS:

    include: PAPER_RULES[_paper]


include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/{paper}/report.md", paper=SELECTED),
        "results/index.md",
    default_target: True


check_targets()  # an unknown target on the command line: the list of papers, before any job


onstart:
    on_start()  # remove the outputs this run makes stale (common.smk)
