# OTOv2 (arXiv 2303.06862): train once with DHSPG over automatically found zero-invariant groups,
# build the compact network, no fine-tuning; against group lasso + threshold + fine-tune and
# random structured pruning. The same DAG at every scale; full.yaml makes it the CIFAR-10 setting
# (ResNet50 and VGG16-BN, GPU training) and adds fetch (CIFAR-10, MD5-checked) before training.
#   (fetch) ─┐
#   zig_partition ── train[(net ×) dense, dhspg|lasso|random × sparsity] ── construct_subnet ── evaluate ── report
#                        train[dhspg_s…] ── train[lasso|random_matched_s…]  (pruned to DHSPG's achieved group count)
from steps.otov2.common import all_runs as _ot_all_runs, references as _ot_references

OT_D, OT_M, OT_R = "data/otov2", "models/otov2", "results/otov2"

# Every trained run: the dense reference (when runs.dense) and each arm × target sparsity, per net
# at full scale (steps.otov2.common.all_runs): run name → (net, arm, sparsity).
OT_SPEC = {name: (net, arm, s) for net, arm, s, name in _ot_all_runs(CFG["otov2"])}
OT_RUNS = list(OT_SPEC)
# Matched baselines: run name → the DHSPG run whose achieved group count they are pruned to.
OT_REF = {name: f"{OT_M}/{ref}.pt" for name, ref in _ot_references(CFG["otov2"]).items()}
# Full scale: CIFAR-10's python release (steps.otov2.fetch); nothing to fetch at smoke/mini.
OT_RAW = [f"{OT_D}/cifar10.lock.json"] if CFG["otov2"].data.source == "cifar10" else []


rule otov2:
    """Everything for otov2 at the chosen scale: its metrics and its report."""
    input:
        f"{OT_R}/accuracy.json",
        f"{OT_R}/report.md",


rule otov2_fetch:
    input:
        code("steps.otov2.fetch", scale_free=True),  # a download: the same at every scale
    output:
        raw=directory(f"{OT_D}/cifar10"),
        lock=f"{OT_D}/cifar10.lock.json",
    params:
        trigger=trigger("otov2", "fetch"),
        args=step_args("otov2", "fetch"),
        cache=f"{OT_D}/downloads",
    threads: 1
    resources:
        **rule_resources("otov2", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/otov2/fetch.log",
    benchmark:
        "benchmarks/otov2/fetch.tsv"
    shell:
        "python -m steps.otov2.fetch {params.args} io.cache={params.cache} io.out={output.raw} io.lock={output.lock} > {log} 2>&1"


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
        raw=OT_RAW,
        partition=f"{OT_M}/zig_groups.json",
        match=lambda w: OT_REF.get(w.run, []),
    output:
        f"{OT_M}/{{run}}.pt",
    wildcard_constraints:
        run="|".join(OT_RUNS),
    params:
        trigger=trigger("otov2", "train"),
        args=step_args("otov2", "train"),
        arm=lambda w: OT_SPEC[w.run][1],
        sparsity=lambda w: OT_SPEC[w.run][2],
        net=lambda w: " ".join(([f"io.net={OT_SPEC[w.run][0]}"] if OT_SPEC[w.run][0] else [])
                               + ([f"io.match={OT_REF[w.run]}"] if w.run in OT_REF else [])),
    threads: 1
    resources:
        **rule_resources("otov2", "train"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/otov2/train_{run}.log",
    benchmark:
        "benchmarks/otov2/train_{run}.tsv"
    shell:
        f"python -m steps.otov2.train {{params.args}} threads={{threads}} {{params.net}} io.arm={{params.arm}} "
        f"io.sparsity={{params.sparsity}} io.raw={OT_D}/cifar10 io.partition={{input.partition}} io.out={{output}} > {{log}} 2>&1"


rule otov2_construct_subnet:
    input:
        code("steps.otov2.construct_subnet"),
        raw=OT_RAW,
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
        f"python -m steps.otov2.construct_subnet {{params.args}} io.raw={OT_D}/cifar10 io.partition={{input.partition}} io.models={OT_M} "
        f"io.out={{output.metrics}} > {{log}} 2>&1"


rule otov2_evaluate:
    input:
        code("steps.otov2.evaluate"),
        raw=OT_RAW,
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
        f"python -m steps.otov2.evaluate {{params.args}} io.raw={OT_D}/cifar10 io.partition={{input.partition}} io.models={OT_M} "
        f"io.out={{output}} > {{log}} 2>&1"
