# OneFlow (arXiv 2110.15032): SBP global tensors + boxing planner + actor runtime, on gloo CPU
# processes that each step forks itself (steps.core.spawn; group.world in params).
#   unit (boxing table, sanity) ─────────────────────────────┐
#   equiv_{dp,tp,hybrid,pp} (params vs single process, bytes)├─ report
#   bytes_grid (planner choice vs measured argmin) ──────────┤
#   pipeline (actor runtime: idle fraction, in-flight) ──────┤
#   throughput (ours vs PyTorch DDP / DTensor TP / pipelining) ┘
# At full scale (params/oneflow/full.yaml) the paper's GPU benchmarks: oneflow_full.smk.
OF_R = "results/oneflow"


rule oneflow:
    """Everything for OneFlow at the chosen scale: its metrics and its report."""
    input:
        [f"{OF_R}/{m}.json" for m in CFG["oneflow"].report.metrics],
        f"{OF_R}/report.md",


rule oneflow_unit:
    input:
        code("steps.oneflow.unit"),
    output:
        f"{OF_R}/unit.json",
    params:
        trigger=trigger("oneflow", "unit"),
        args=step_args("oneflow", "unit"),
    threads: res("oneflow", "unit", "threads", 2)
    resources:
        **rule_resources("oneflow", "unit"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/unit.log",
    benchmark:
        "benchmarks/oneflow/unit.tsv"
    shell:
        "python -m steps.oneflow.unit {params.args} io.metrics={output} > {log} 2>&1"


rule oneflow_equiv:
    input:
        code("steps.oneflow.equiv"),
    output:
        f"{OF_R}/equiv_{{placement}}.json",
    wildcard_constraints:
        placement="dp|tp|hybrid|pp",
    params:
        trigger=trigger("oneflow", "equiv"),
        args=step_args("oneflow", "equiv"),
    threads: res("oneflow", "equiv", "threads", 2)
    resources:
        **rule_resources("oneflow", "equiv"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/equiv_{placement}.log",
    benchmark:
        "benchmarks/oneflow/equiv_{placement}.tsv"
    shell:
        "python -m steps.oneflow.equiv {params.args} equiv.placement={wildcards.placement} "
        "io.metrics={output} > {log} 2>&1"


rule oneflow_bytes_grid:
    input:
        code("steps.oneflow.bytes_grid"),
    output:
        f"{OF_R}/bytes_grid.json",
    params:
        trigger=trigger("oneflow", "bytes_grid"),
        args=step_args("oneflow", "bytes_grid"),
    threads: res("oneflow", "bytes_grid", "threads", 2)
    resources:
        **rule_resources("oneflow", "bytes_grid"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/bytes_grid.log",
    benchmark:
        "benchmarks/oneflow/bytes_grid.tsv"
    shell:
        "python -m steps.oneflow.bytes_grid {params.args} io.metrics={output} > {log} 2>&1"


rule oneflow_pipeline:
    input:
        code("steps.oneflow.pipeline"),
    output:
        f"{OF_R}/pipeline.json",
    params:
        trigger=trigger("oneflow", "pipeline"),
        args=step_args("oneflow", "pipeline"),
    threads: res("oneflow", "pipeline", "threads", 2)
    resources:
        **rule_resources("oneflow", "pipeline"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/pipeline.log",
    benchmark:
        "benchmarks/oneflow/pipeline.tsv"
    shell:
        "python -m steps.oneflow.pipeline {params.args} io.metrics={output} > {log} 2>&1"


rule oneflow_throughput:
    input:
        code("steps.oneflow.throughput"),
    output:
        f"{OF_R}/throughput.json",
    params:
        trigger=trigger("oneflow", "throughput"),
        args=step_args("oneflow", "throughput"),
    threads: res("oneflow", "throughput", "threads", 2)
    resources:
        **rule_resources("oneflow", "throughput"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/oneflow/throughput.log",
    benchmark:
        "benchmarks/oneflow/throughput.tsv"
    shell:
        "python -m steps.oneflow.throughput {params.args} io.metrics={output} > {log} 2>&1"
