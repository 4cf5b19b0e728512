# Replica symmetry breaking in dense neural networks (arXiv 2111.12997): RS theory and
# zero-temperature Monte Carlo of the P-body Hebbian network, one job per (P, N), then the
# finite-size extrapolation. The same DAG at every scale; full.yaml makes it large.
#   theory ───────────────────────────────────────────┐
#   montecarlo p2_n*, p4_n*, p6_n* ── extrapolate ─────┴─ report
RD_D, RD_R = "data/rsb_dense", "results/rsb_dense"
# Every Monte Carlo job's output: one per system (P) and size N in params.
RD_MC = [f"{RD_D}/mc/{s}_n{int(n)}.json" for s, sy in CFG["rsb_dense"].mc.systems.items() for n in sy.sizes]


rule rsb_dense:
    """Everything for rsb_dense at the chosen scale: its metrics and its report."""
    input:
        f"{RD_R}/capacity.json",
        f"{RD_R}/report.md",


rule rsb_dense_theory:
    input:
        code("steps.rsb_dense.theory"),
    output:
        f"{RD_R}/theory.json",
    params:
        trigger=trigger("rsb_dense", "theory"),
        args=step_args("rsb_dense", "theory"),
    threads: res("rsb_dense", "theory", "threads", 1)
    resources:
        **rule_resources("rsb_dense", "theory"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/rsb_dense/theory.log",
    benchmark:
        "benchmarks/rsb_dense/theory.tsv"
    shell:
        "python -m steps.rsb_dense.theory {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule rsb_dense_montecarlo:
    input:
        code("steps.rsb_dense.montecarlo"),
    output:
        f"{RD_D}/mc/{{system}}_n{{n}}.json",
    wildcard_constraints:
        system=r"p\d+",
        n=r"\d+",
    params:
        trigger=trigger("rsb_dense", "montecarlo"),
        args=step_args("rsb_dense", "montecarlo"),
    threads: res("rsb_dense", "montecarlo", "threads", 1)
    resources:
        **rule_resources("rsb_dense", "montecarlo"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/rsb_dense/montecarlo_{system}_n{n}.log",
    benchmark:
        "benchmarks/rsb_dense/montecarlo_{system}_n{n}.tsv"
    shell:
        "python -m steps.rsb_dense.montecarlo {params.args} threads={threads} io.system={wildcards.system} "
        "io.n={wildcards.n} io.out={output} > {log} 2>&1"


rule rsb_dense_extrapolate:
    input:
        code("steps.rsb_dense.extrapolate"),
        mc=RD_MC,
    output:
        capacity=f"{RD_R}/capacity.json",
        noise=f"{RD_R}/noise.json",
        supralinear=f"{RD_R}/supralinear.json",
    params:
        trigger=trigger("rsb_dense", "extrapolate"),
        args=step_args("rsb_dense", "extrapolate"),
    threads: res("rsb_dense", "extrapolate", "threads", 1)
    resources:
        **rule_resources("rsb_dense", "extrapolate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/rsb_dense/extrapolate.log",
    benchmark:
        "benchmarks/rsb_dense/extrapolate.tsv"
    shell:
        f"python -m steps.rsb_dense.extrapolate {{params.args}} threads={{threads}} io.mc={RD_D}/mc "
        f"io.results={RD_R} > {{log}} 2>&1"
