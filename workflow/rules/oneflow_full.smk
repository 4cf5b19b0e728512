# OneFlow at full scale (arXiv 2110.15032, §6): the case-study throughput benchmarks on GPU
# clusters, OneFlow against the frameworks the paper compares with. Included by the Snakefile
# instead of oneflow.smk when --config scale=full; settings and resources in params/oneflow/full.yaml.
#   fetch{imagenet,wikipedia,openwebtext,ms1m,criteo} ─ bench_<model>_<framework>_<parallelism>_<nodes> ─ report

OFF_D, OFF_R = "data/oneflow", "results/oneflow"
OFF_BENCH = {f"{b['model']}_{b['framework']}_{b['parallelism']}_{b['nodes']}": b
             for b in CFG["oneflow"].full.benchmarks}


rule oneflow:
    """Everything for OneFlow at full scale: the benchmarks and the report."""
    input:
        [f"{OFF_R}/{m}.json" for m in CFG["oneflow"].report.metrics],
        f"{OFF_R}/report.md",


# No code() input: an edit of the downloader must not re-fetch terabytes.
rule oneflow_fetch:
    output:
        out=directory(f"{OFF_D}/{{dataset}}"),
        lock=f"{OFF_D}/{{dataset}}.lock.json",
    wildcard_constraints:
        dataset="|".join(CFG["oneflow"].full.datasets),
    params:
        trigger=trigger("oneflow", "fetch"),
        args=step_args("oneflow", "fetch"),
        cache=f"{OFF_D}/downloads",
    threads: res("oneflow", "fetch", "threads", 1)
    resources:
        **rule_resources("oneflow", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/fetch_{dataset}.log",
    benchmark:
        "benchmarks/oneflow/fetch_{dataset}.tsv"
    shell:
        "python -m steps.oneflow.fetch {params.args} io.dataset={wildcards.dataset} io.out={output.out} "
        "io.cache={params.cache} > {log} 2>&1"


rule oneflow_bench:
    input:
        code("steps.oneflow.bench"),
        data=lambda w: f"{OFF_D}/{OFF_BENCH[w.bench]['dataset']}",
    output:
        f"{OFF_R}/bench_{{bench}}.json",
    wildcard_constraints:
        bench="|".join(OFF_BENCH),
    params:
        trigger=trigger("oneflow", "bench"),
        args=step_args("oneflow", "bench"),
    threads: res("oneflow", "bench", "threads", 8)
    resources:
        **rule_resources("oneflow", "bench", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/bench_{bench}.log",
    benchmark:
        "benchmarks/oneflow/bench_{bench}.tsv"
    shell:
        "{resources.launch} -m steps.oneflow.bench {params.args} io.bench={wildcards.bench} io.data={input.data} "
        "io.metrics={output} > {log} 2>&1"
