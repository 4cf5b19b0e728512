# ℓ∞-guarantee regression by sketch-and-solve (arXiv 2302.00248): no training, a numerical
# check of the theorems. CPU rules only, at every scale (full: a SLURM CPU partition).
#   [fetch{asset}, full] ─ instances ─ sketch_solve{instance, shard} ─ aggregate ─┐
#                          timing ────────────────────────────────────────────────┼─ report
#                          sanity ────────────────────────────────────────────────┘
import functools

LR_D, LR_R = "data/linf_regression", "results/linf_regression"
LR_CFG = CFG["linf_regression"]
LR_INSTANCES = [str(i) for i in LR_CFG.instances.use]
LR_SHARDS = list(range(int(LR_CFG.grid.shards)))
# Fetched assets the real (csv) instances of this scale read; none below full scale.
# Each phase's trigger and step arguments, computed once (at full, 50 shard jobs per instance share them).
LR_TRIGGER = functools.cache(lambda phase: trigger_value("linf_regression", phase))
LR_ARGS = functools.cache(lambda phase: step_args_value("linf_regression", phase))
LR_ASSETS = sorted({str(LR_CFG.instances.specs[i].asset) for i in LR_INSTANCES
                    if LR_CFG.instances.specs[i].kind == "csv"})


rule linf_regression:
    """Everything for linf_regression at the chosen scale: its metrics and its report."""
    input:
        f"{LR_R}/linf.json",
        f"{LR_R}/report.md",


if LR_ASSETS:

    # No code() input: an edit of the downloader must not re-download. The trigger is the
    # asset's own entry, so pinning its checksum refetches that asset only.
    rule linf_regression_fetch:
        output:
            out=directory(f"{LR_D}/raw/{{asset}}"),
            lock=f"{LR_D}/raw/{{asset}}.lock.json",
        wildcard_constraints:
            asset="|".join(LR_ASSETS),
        params:
            trigger=lambda w: json.dumps(LR_CFG.fetch.assets[w.asset], sort_keys=True),
            args=lambda w: LR_ARGS("fetch"),
            cache=f"{LR_D}/downloads",  # not an output: Snakemake never deletes a half-done download
        threads: res("linf_regression", "fetch", "threads", 1)
        resources:
            **rule_resources("linf_regression", "fetch"),
        conda:
            "../envs/paperzoo.yaml"
        log:
            "logs/linf_regression/fetch_{asset}.log",
        benchmark:
            "benchmarks/linf_regression/fetch_{asset}.tsv"
        shell:
            "python -m steps.linf_regression.fetch {params.args} threads={threads} io.cache={params.cache} "
            "io.out={output.out} > {log} 2>&1"


rule linf_regression_instances:
    input:
        code("steps.linf_regression.instances"),
        raw=expand(f"{LR_D}/raw/{{asset}}", asset=LR_ASSETS),
    output:
        expand(f"{LR_D}/instances/{{instance}}.npz", instance=LR_INSTANCES),
    params:
        trigger=lambda w: LR_TRIGGER("instances"),
        args=lambda w: LR_ARGS("instances"),
        out_dir=lambda w, output: os.path.dirname(output[0]),
        raw=lambda w, input: os.path.dirname(input.raw[0]) if input.raw else f"{LR_D}/raw",
    threads: res("linf_regression", "instances", "threads", 1)
    resources:
        **rule_resources("linf_regression", "instances"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/linf_regression/instances.log",
    benchmark:
        "benchmarks/linf_regression/instances.tsv"
    shell:
        "python -m steps.linf_regression.instances {params.args} threads={threads} "
        "io.out_dir={params.out_dir} io.raw={params.raw} > {log} 2>&1"


rule linf_regression_sketch_solve:
    input:
        code("steps.linf_regression.sketch_solve"),
        instance=f"{LR_D}/instances/{{instance}}.npz",
    output:
        f"{LR_R}/trials/{{instance}}_{{shard}}.parquet",
    wildcard_constraints:
        instance="|".join(LR_INSTANCES),
        shard=r"\d+",
    params:
        trigger=lambda w: LR_TRIGGER("sketch_solve"),
        args=lambda w: LR_ARGS("sketch_solve"),
    threads: res("linf_regression", "sketch_solve", "threads", 1)
    resources:
        **rule_resources("linf_regression", "sketch_solve"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/linf_regression/sketch_solve_{instance}_{shard}.log",
    benchmark:
        "benchmarks/linf_regression/sketch_solve_{instance}_{shard}.tsv"
    shell:
        "python -m steps.linf_regression.sketch_solve {params.args} grid.shard={wildcards.shard} threads={threads} "
        "io.instance={input.instance} io.out={output} > {log} 2>&1"


rule linf_regression_aggregate:
    input:
        code("steps.linf_regression.aggregate"),
        trials=expand(f"{LR_R}/trials/{{instance}}_{{shard}}.parquet", instance=LR_INSTANCES, shard=LR_SHARDS),
    output:
        f"{LR_R}/linf.json",
    params:
        trigger=lambda w: LR_TRIGGER("aggregate"),
        args=lambda w: LR_ARGS("aggregate"),
        trials=lambda w, input: os.path.dirname(input.trials[0]),
    threads: res("linf_regression", "aggregate", "threads", 1)
    resources:
        **rule_resources("linf_regression", "aggregate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/linf_regression/aggregate.log",
    benchmark:
        "benchmarks/linf_regression/aggregate.tsv"
    shell:
        "python -m steps.linf_regression.aggregate {params.args} threads={threads} "
        "io.trials={params.trials} io.out={output} > {log} 2>&1"


rule linf_regression_timing:
    input:
        code("steps.linf_regression.timing"),
    output:
        f"{LR_R}/timing.json",
    params:
        trigger=lambda w: LR_TRIGGER("timing"),
        args=lambda w: LR_ARGS("timing"),
    threads: res("linf_regression", "timing", "threads", 1)
    resources:
        **rule_resources("linf_regression", "timing"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/linf_regression/timing.log",
    benchmark:
        "benchmarks/linf_regression/timing.tsv"
    shell:
        "python -m steps.linf_regression.timing {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule linf_regression_sanity:
    input:
        code("steps.linf_regression.sanity"),
    output:
        f"{LR_R}/sanity.json",
    params:
        trigger=lambda w: LR_TRIGGER("sanity"),
        args=lambda w: LR_ARGS("sanity"),
    threads: res("linf_regression", "sanity", "threads", 1)
    resources:
        **rule_resources("linf_regression", "sanity"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/linf_regression/sanity.log",
    benchmark:
        "benchmarks/linf_regression/sanity.tsv"
    shell:
        "python -m steps.linf_regression.sanity {params.args} threads={threads} io.out={output} > {log} 2>&1"
