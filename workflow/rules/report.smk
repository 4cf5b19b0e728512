# Rules every paper shares: its scale stamp, its report, and the all-papers index
# (steps.core.report, steps.core.index).


rule scale_stamp:
    """data/<paper>/scale.txt: the scale the paper's outputs are built at. Every rule of the paper
    reads it (common.smk: code()), and the scale is its params, so switching scale rewrites it and
    rebuilds everything that depends on the scale, whichever rules make the outputs."""
    output:
        "data/{paper}/scale.txt",
    params:
        scale=SCALE,
    localrule: True
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/{paper}/scale_stamp.log",
    shell:
        "echo {params.scale} > {output} 2> {log}"



rule report:
    """results/<paper>/report.md: the paper's numbers beside ours, every claim's verdict, figures;
    report.json (the index reads it) and summary.json (the paper's DVC metric)."""
    input:
        code("steps.core.report"),
        metrics=lambda w: [f"results/{w.paper}/{m}.json" for m in CFG[w.paper].report.metrics],
        claims="params/{paper}/claims.yaml",
        stamp="data/{paper}/scale.txt",
    output:
        md="results/{paper}/report.md",
        summary="results/{paper}/report.json",
        dvc_metric="results/{paper}/summary.json",
    params:
        trigger=lambda w: trigger_value(w.paper, "report"),
        args=lambda w: step_args_value(w.paper, "report"),
    resources:
        mem_mb=lambda w: res(w.paper, "report", "mem_mb"),
        runtime=lambda w: res(w.paper, "report", "runtime"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/{paper}/report.log",
    benchmark:
        "benchmarks/{paper}/report.tsv"
    shell:
        "python -m steps.core.report paper={wildcards.paper} {params.args} "
        "io.results=results/{wildcards.paper} io.benchmarks=benchmarks/{wildcards.paper} > {log} 2>&1"


rule index:
    """results/index.md: one row per paper that has a report; it waits for the reports of the
    selected papers (--config papers=a,b; default: every paper)."""
    input:
        code("steps.core.index"),
        reports=expand("results/{paper}/report.json", paper=SELECTED),
    output:
        "results/index.md",
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/index.log",
    benchmark:
        "benchmarks/index.tsv"
    shell:
        "python -m steps.core.index io.results=results io.out={output} > {log} 2>&1"
