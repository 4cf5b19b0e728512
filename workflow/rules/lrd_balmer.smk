# Inayoshi & Maiolino (arXiv 2409.07805): a Balmer break and Balmer absorption from extremely
# dense gas around an AGN, without stars. No training: atomic data → level populations over the
# model grid (split into chunks: one job per core here, a SLURM job per chunk at full) →
# transmitted spectra, breaks and absorption → report.
#   atomic ── solve_levels (chunk 0..K-1) ── synthesize ──────────────────── report
#                                         └── earlier_model (each earlier model) ┘
# earlier_model recomputes the Balmer metrics under the spectrum models the claims were
# registered with, so the report measures each claim's verdict before a model change.
LB_D, LB_R = "data/lrd_balmer", "results/lrd_balmer"
LB_CHUNKS = list(range(int(CFG["lrd_balmer"].grid.chunks)))
LB_EARLIER = list(CFG["lrd_balmer"].earlier_models)


rule lrd_balmer:
    """Everything for lrd_balmer at the chosen scale: its metrics and its report."""
    input:
        f"{LB_R}/balmer.json",
        expand(f"{LB_R}/balmer_{{model}}.json", model=LB_EARLIER),
        f"{LB_R}/report.md",


rule lrd_balmer_atomic:
    input:
        code("steps.lrd_balmer.atomic"),
    output:
        atom=f"{LB_D}/atomic.json",
        metrics=f"{LB_R}/atomic.json",
    params:
        trigger=trigger("lrd_balmer", "atomic"),
        args=step_args("lrd_balmer", "atomic"),
    threads: res("lrd_balmer", "atomic", "threads", 1)
    resources:
        **rule_resources("lrd_balmer", "atomic"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/lrd_balmer/atomic.log",
    benchmark:
        "benchmarks/lrd_balmer/atomic.tsv"
    shell:
        "python -m steps.lrd_balmer.atomic {params.args} threads={threads} "
        "io.out={output.atom} io.metrics={output.metrics} > {log} 2>&1"


rule lrd_balmer_solve_levels:
    input:
        code("steps.lrd_balmer.solve_levels"),
        atom=f"{LB_D}/atomic.json",
    output:
        f"{LB_D}/levels/chunk{{chunk}}.npz",
    wildcard_constraints:
        chunk=r"\d+",
    params:
        trigger=trigger("lrd_balmer", "solve_levels"),
        args=step_args("lrd_balmer", "solve_levels"),
    threads: res("lrd_balmer", "solve_levels", "threads", 1)
    resources:
        **rule_resources("lrd_balmer", "solve_levels"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/lrd_balmer/solve_levels_{chunk}.log",
    benchmark:
        "benchmarks/lrd_balmer/solve_levels_{chunk}.tsv"
    shell:
        "python -m steps.lrd_balmer.solve_levels {params.args} threads={threads} "
        "io.atom={input.atom} io.chunk={wildcards.chunk} io.out={output} > {log} 2>&1"


rule lrd_balmer_synthesize:
    input:
        code("steps.lrd_balmer.synthesize"),
        atom=f"{LB_D}/atomic.json",
        chunks=expand(f"{LB_D}/levels/chunk{{chunk}}.npz", chunk=LB_CHUNKS),
    output:
        levels=f"{LB_R}/levels.json",
        balmer=f"{LB_R}/balmer.json",
        grid=f"{LB_R}/grid.npz",
        spectra=f"{LB_R}/spectra.npz",
    params:
        trigger=trigger("lrd_balmer", "synthesize"),
        args=step_args("lrd_balmer", "synthesize"),
    threads: res("lrd_balmer", "synthesize", "threads", 1)
    resources:
        **rule_resources("lrd_balmer", "synthesize"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/lrd_balmer/synthesize.log",
    benchmark:
        "benchmarks/lrd_balmer/synthesize.tsv"
    shell:
        f"python -m steps.lrd_balmer.synthesize {{params.args}} threads={{threads}} io.atom={{input.atom}} "
        f"io.levels={LB_D}/levels io.results={LB_R} > {{log}} 2>&1"


rule lrd_balmer_earlier_model:
    input:
        code("steps.lrd_balmer.earlier_model"),
        atom=f"{LB_D}/atomic.json",
        chunks=expand(f"{LB_D}/levels/chunk{{chunk}}.npz", chunk=LB_CHUNKS),
    output:
        f"{LB_R}/balmer_{{model}}.json",
    wildcard_constraints:
        model="|".join(LB_EARLIER) or "(?!)",
    params:
        trigger=trigger("lrd_balmer", "earlier_model"),
        args=step_args("lrd_balmer", "earlier_model"),
    threads: res("lrd_balmer", "earlier_model", "threads", 1)
    resources:
        **rule_resources("lrd_balmer", "earlier_model"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/lrd_balmer/earlier_model_{model}.log",
    benchmark:
        "benchmarks/lrd_balmer/earlier_model_{model}.tsv"
    shell:
        "python -m steps.lrd_balmer.earlier_model {params.args} threads={threads} io.model={wildcards.model} "
        f"io.atom={{input.atom}} io.levels={LB_D}/levels io.out={{output}} > {{log}} 2>&1"
