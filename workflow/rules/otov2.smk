# OTOv2 (arXiv 2303.06862): train once with DHSPG over automatically found zero-invariant groups,
# build the compact network, no fine-tuning; against group lasso + threshold + fine-tune and
# random structured pruning. The same DAG at every scale; full.yaml makes it large (GPU training).
#   zig_partition ── train[dense, dhspg|lasso|random × sparsity] ── construct_subnet ── evaluate ── report
OT_M, OT_R = "models/otov2", "results/otov2"


# Every trained run: the dense reference (when runs.dense) and each arm × target sparsity.
OT_RUNS = (["dense_s0"] if CFG["otov2"].runs.dense else []) + [
    f"{a}_s{int(round(float(s) * 100))}" for a in CFG["otov2"].runs.arms for s in CFG["otov2"].runs.sparsities
]


rule otov2:
    """Everything for otov2 at the chosen scale: its metrics and its report."""
    input:
        f"{OT_R}/accuracy.json",
        f"{OT_R}/report.md",


rule otov2_zig_partition:
    input:
        code("steps.otov2.zig_partition"),
    output:
        groups=f"{OT_M}/zig_groups.json",
        metrics=f"{OT_R}/partition.json",
    params:
        trigger=trigger("otov2", "zig_partition"),
        args=step_args("otov2", "zig_partition"),
    threads: 1
    resources:
        **rule_resources("otov2", "zig_partition"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/otov2/zig_partition.log",
    benchmark:
        "benchmarks/otov2/zig_partition.tsv"
    shell:
        "python -m steps.otov2.zig_partition {params.args} io.out={output.groups} io.metrics={output.metrics} > {log} 2>&1"


rule otov2_train:
    input:
        code("steps.otov2.train"),
        partition=f"{OT_M}/zig_groups.json",
    output:
        f"{OT_M}/{{arm}}_s{{sparsity}}.pt",
    wildcard_constraints:
        arm="dense|dhspg|lasso|random",
        sparsity=r"\d+",
    params:
        trigger=trigger("otov2", "train"),
        args=step_args("otov2", "train"),
        sparsity=lambda w: int(w.sparsity) / 100,
    threads: 1
    resources:
        **rule_resources("otov2", "train"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/otov2/train_{arm}_s{sparsity}.log",
    benchmark:
        "benchmarks/otov2/train_{arm}_s{sparsity}.tsv"
    shell:
        "python -m steps.otov2.train {params.args} threads={threads} io.arm={wildcards.arm} "
        "io.sparsity={params.sparsity} io.partition={input.partition} io.out={output} > {log} 2>&1"


rule otov2_construct_subnet:
    input:
        code("steps.otov2.construct_subnet"),
        partition=f"{OT_M}/zig_groups.json",
        models=expand(f"{OT_M}/{{run}}.pt", run=OT_RUNS),
    output:
        compact=expand(f"{OT_M}/{{run}}_compact.pt", run=OT_RUNS),
        metrics=f"{OT_R}/equivalence.json",
    params:
        trigger=trigger("otov2", "construct_subnet"),
        args=step_args("otov2", "construct_subnet"),
    threads: 1
    resources:
        **rule_resources("otov2", "construct_subnet"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/otov2/construct_subnet.log",
    benchmark:
        "benchmarks/otov2/construct_subnet.tsv"
    shell:
        f"python -m steps.otov2.construct_subnet {{params.args}} io.partition={{input.partition}} io.models={OT_M} "
        f"io.out={{output.metrics}} > {{log}} 2>&1"


rule otov2_evaluate:
    input:
        code("steps.otov2.evaluate"),
        partition=f"{OT_M}/zig_groups.json",
        compact=expand(f"{OT_M}/{{run}}_compact.pt", run=OT_RUNS),
    output:
        f"{OT_R}/accuracy.json",
    params:
        trigger=trigger("otov2", "evaluate"),
        args=step_args("otov2", "evaluate"),
    threads: 1
    resources:
        **rule_resources("otov2", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/otov2/evaluate.log",
    benchmark:
        "benchmarks/otov2/evaluate.tsv"
    shell:
        f"python -m steps.otov2.evaluate {{params.args}} io.partition={{input.partition}} io.models={OT_M} "
        f"io.out={{output}} > {{log}} 2>&1"
