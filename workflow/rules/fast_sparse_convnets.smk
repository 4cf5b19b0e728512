# Fast Sparse ConvNets (arXiv 1911.09723): dense MobileNet-v1-style nets at several widths →
# gradual magnitude pruning of the wide ones (unstructured and 1×4 blocks) → sparse 1×1 kernels
# benchmarked against dense ones → accuracy against measured latency of every model → report.
# The same DAG at every scale; full.yaml makes it ImageNet-sized with GPU training rules.
#   train_dense w* ──┬───────────── frontier ─┬─ report
#                    └─ prune w*,s*,b* ─┘      │
#   bench_kernels ─────────────────────────────┘
FSC_M, FSC_R = "models/fast_sparse_convnets", "results/fast_sparse_convnets"
_FSC = CFG["fast_sparse_convnets"]


FSC_DENSE = [f"{FSC_M}/dense_w{float(w):g}.pt" for w in _FSC.model.widths]
FSC_SPARSE = [
    f"{FSC_M}/sparse_w{float(w):g}_s{float(s):g}_b{int(b)}.pt"
    for w in _FSC.prune.widths
    for s in _FSC.prune.sparsities
    for b in _FSC.prune.blocks
]


rule fast_sparse_convnets:
    """Everything for fast_sparse_convnets at the chosen scale: its metrics and its report."""
    input:
        f"{FSC_R}/frontier.json",
        f"{FSC_R}/report.md",


rule fast_sparse_convnets_train_dense:
    input:
        code("steps.fast_sparse_convnets.train_dense"),
    output:
        f"{FSC_M}/dense_w{{width}}.pt",
    wildcard_constraints:
        width=r"[0-9.]+",
    params:
        trigger=trigger("fast_sparse_convnets", "train_dense"),
        args=step_args("fast_sparse_convnets", "train_dense"),
    threads: res("fast_sparse_convnets", "train_dense", "threads", 1)
    resources:
        **rule_resources("fast_sparse_convnets", "train_dense"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/fast_sparse_convnets/train_dense_w{width}.log",
    benchmark:
        "benchmarks/fast_sparse_convnets/train_dense_w{width}.tsv"
    shell:
        "python -m steps.fast_sparse_convnets.train_dense {params.args} threads={threads} "
        "io.width={wildcards.width} io.out={output} > {log} 2>&1"


rule fast_sparse_convnets_prune:
    input:
        code("steps.fast_sparse_convnets.prune"),
        dense=f"{FSC_M}/dense_w{{width}}.pt",
    output:
        f"{FSC_M}/sparse_w{{width}}_s{{sparsity}}_b{{block}}.pt",
    wildcard_constraints:
        width=r"[0-9.]+",
        sparsity=r"0\.[0-9]+",
        block=r"[0-9]+",
    params:
        trigger=trigger("fast_sparse_convnets", "prune"),
        args=step_args("fast_sparse_convnets", "prune"),
    threads: res("fast_sparse_convnets", "prune", "threads", 1)
    resources:
        **rule_resources("fast_sparse_convnets", "prune"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/fast_sparse_convnets/prune_w{width}_s{sparsity}_b{block}.log",
    benchmark:
        "benchmarks/fast_sparse_convnets/prune_w{width}_s{sparsity}_b{block}.tsv"
    shell:
        "python -m steps.fast_sparse_convnets.prune {params.args} threads={threads} io.dense={input.dense} "
        "io.sparsity={wildcards.sparsity} io.block={wildcards.block} io.out={output} > {log} 2>&1"


rule fast_sparse_convnets_bench_kernels:
    input:
        code("steps.fast_sparse_convnets.bench_kernels"),
    output:
        f"{FSC_R}/kernel_speedup.json",
    params:
        trigger=trigger("fast_sparse_convnets", "bench_kernels"),
        args=step_args("fast_sparse_convnets", "bench_kernels"),
    threads: res("fast_sparse_convnets", "bench_kernels", "threads", 1)
    resources:
        **rule_resources("fast_sparse_convnets", "bench_kernels"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/fast_sparse_convnets/bench_kernels.log",
    benchmark:
        "benchmarks/fast_sparse_convnets/bench_kernels.tsv"
    shell:
        "python -m steps.fast_sparse_convnets.bench_kernels {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule fast_sparse_convnets_frontier:
    input:
        code("steps.fast_sparse_convnets.frontier"),
        models=FSC_DENSE + FSC_SPARSE,
    output:
        f"{FSC_R}/frontier.json",
    params:
        trigger=trigger("fast_sparse_convnets", "frontier"),
        args=step_args("fast_sparse_convnets", "frontier"),
    threads: res("fast_sparse_convnets", "frontier", "threads", 1)
    resources:
        **rule_resources("fast_sparse_convnets", "frontier"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/fast_sparse_convnets/frontier.log",
    benchmark:
        "benchmarks/fast_sparse_convnets/frontier.tsv"
    shell:
        f"python -m steps.fast_sparse_convnets.frontier {{params.args}} threads={{threads}} io.models={FSC_M} "
        "io.out={output} > {log} 2>&1"
