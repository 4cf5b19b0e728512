# GPUSQ-ViT (arXiv 2305.10727): dense ViT → 2:4 prune + distillation fine-tune → sparse-
# distillation-aware QAT (INT8, INT4), against no distillation, post-training quantization and
# unstructured pruning; then accuracy, size and BOPs of every model, and the GPU 2:4 speed-up.
# The same DAG at every scale (full.yaml makes it large and puts training on GPUs).
#   data ─ dense ─┬─ prune sp24_kd ──┬─ qat gpusq_int8, gpusq_int4 ─┐
#                 │                  └─ ptq (+ dense_ptq_int8) ─────┤
#                 ├─ prune sp24_nokd ─ qat nokd_int8, nokd_int4 ────┼─ evaluate ─┐
#                 └─ prune unst50_kd ─ qat unst50_int8 ─────────────┘            ├─ report
#   (every training phase and evaluate also read data; at full they stream ImageNet from data.root)
#   bench (2:4 semi-structured matmul on a CUDA GPU; "not measured" without one) ┘
GQ = CFG["gpusq_vit"]
# data: the Fashion-MNIST npz (smoke, mini), or the index of the user's ImageNet tree (full)
GQ_D = "data/gpusq_vit/fmnist.npz" if GQ.data.source == "fashion_mnist" else f"data/gpusq_vit/{GQ.data.source}_index.json"
GQ_M, GQ_R = "models/gpusq_vit", "results/gpusq_vit"
GQ_ARMS = ["dense", *GQ.prune.run, *GQ.qat.run, *GQ.ptq.arms]


rule gpusq_vit:
    """Everything for GPUSQ-ViT at the chosen scale: its metrics and its report."""
    input:
        expand(f"{GQ_R}/{{m}}.json", m=GQ.report.metrics),
        f"{GQ_R}/report.md",


rule gpusq_vit_data:
    input:
        code("steps.gpusq_vit.data"),
    output:
        GQ_D,
    params:
        trigger=trigger("gpusq_vit", "data"),
        args=step_args("gpusq_vit", "data"),
    threads: res("gpusq_vit", "data", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "data"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/data.log",
    benchmark:
        "benchmarks/gpusq_vit/data.tsv"
    shell:
        "python -m steps.gpusq_vit.data {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule gpusq_vit_dense:
    input:
        code("steps.gpusq_vit.dense"),
        data=GQ_D,
    output:
        f"{GQ_M}/dense.pt",
    params:
        trigger=trigger("gpusq_vit", "dense"),
        args=step_args("gpusq_vit", "dense"),
    threads: res("gpusq_vit", "dense", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "dense"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/dense.log",
    benchmark:
        "benchmarks/gpusq_vit/dense.tsv"
    shell:
        "python -m steps.gpusq_vit.dense {params.args} threads={threads} io.data={input.data} io.out={output} > {log} 2>&1"


rule gpusq_vit_prune:
    input:
        code("steps.gpusq_vit.prune"),
        data=GQ_D,
        teacher=f"{GQ_M}/dense.pt",
    output:
        f"{GQ_M}/{{arm}}.pt",
    wildcard_constraints:
        arm="|".join(GQ.prune.arms),
    params:
        trigger=trigger("gpusq_vit", "prune"),
        args=step_args("gpusq_vit", "prune"),
    threads: res("gpusq_vit", "prune", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "prune"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/prune_{arm}.log",
    benchmark:
        "benchmarks/gpusq_vit/prune_{arm}.tsv"
    shell:
        "python -m steps.gpusq_vit.prune {params.args} threads={threads} io.arm={wildcards.arm} "
        "io.data={input.data} io.teacher={input.teacher} io.out={output} > {log} 2>&1"


rule gpusq_vit_qat:
    input:
        code("steps.gpusq_vit.qat"),
        data=GQ_D,
        teacher=f"{GQ_M}/dense.pt",
        sparse=lambda w: f"{GQ_M}/{GQ.qat.arms[w.arm].source}.pt",
    output:
        f"{GQ_M}/{{arm}}.pt",
    wildcard_constraints:
        arm="|".join(GQ.qat.arms),
    params:
        trigger=trigger("gpusq_vit", "qat"),
        args=step_args("gpusq_vit", "qat"),
    threads: res("gpusq_vit", "qat", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "qat"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/qat_{arm}.log",
    benchmark:
        "benchmarks/gpusq_vit/qat_{arm}.tsv"
    shell:
        "python -m steps.gpusq_vit.qat {params.args} threads={threads} io.arm={wildcards.arm} "
        "io.data={input.data} io.teacher={input.teacher} io.sparse={input.sparse} io.out={output} > {log} 2>&1"


rule gpusq_vit_ptq:
    input:
        code("steps.gpusq_vit.ptq"),
        data=GQ_D,
        dense=f"{GQ_M}/dense.pt",
        sparse=f"{GQ_M}/sp24_kd.pt",
    output:
        [f"{GQ_M}/{a}.pt" for a in GQ.ptq.arms],
    params:
        trigger=trigger("gpusq_vit", "ptq"),
        args=step_args("gpusq_vit", "ptq"),
    threads: res("gpusq_vit", "ptq", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "ptq"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/ptq.log",
    benchmark:
        "benchmarks/gpusq_vit/ptq.tsv"
    shell:
        f"python -m steps.gpusq_vit.ptq {{params.args}} threads={{threads}} io.data={{input.data}} io.dense={{input.dense}} "
        f"io.sparse={{input.sparse}} io.models={GQ_M} > {{log}} 2>&1"


rule gpusq_vit_evaluate:
    input:
        code("steps.gpusq_vit.evaluate"),
        data=GQ_D,
        models=[f"{GQ_M}/{a}.pt" for a in GQ_ARMS],
    output:
        accuracy=f"{GQ_R}/accuracy.json",
        compression=f"{GQ_R}/compression.json",
    params:
        trigger=trigger("gpusq_vit", "evaluate"),
        args=step_args("gpusq_vit", "evaluate"),
    threads: res("gpusq_vit", "evaluate", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/evaluate.log",
    benchmark:
        "benchmarks/gpusq_vit/evaluate.tsv"
    shell:
        f"python -m steps.gpusq_vit.evaluate {{params.args}} threads={{threads}} io.data={{input.data}} io.models={GQ_M} "
        f"io.results={GQ_R} > {{log}} 2>&1"


rule gpusq_vit_bench:
    input:
        code("steps.gpusq_vit.bench_semi_structured"),
    output:
        f"{GQ_R}/gpu_speedup.json",
    params:
        trigger=trigger("gpusq_vit", "bench"),
        args=step_args("gpusq_vit", "bench"),
    threads: res("gpusq_vit", "bench", "threads", 1)
    resources:
        **rule_resources("gpusq_vit", "bench"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/gpusq_vit/bench.log",
    benchmark:
        "benchmarks/gpusq_vit/bench.tsv"
    shell:
        "python -m steps.gpusq_vit.bench_semi_structured {params.args} threads={threads} io.out={output} > {log} 2>&1"
