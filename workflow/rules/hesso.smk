# HESSO (arXiv 2409.09085): hybrid-saliency structured pruning with progressive linear decay and
# CRIC's corrective cycle, against DHSPG (OTOv2), on the shared ZIG core (steps.nn.zig).
# The same DAG at every scale; params/hesso/<scale>.yaml sets the runs and budgets. Full scale
# adds fetch (CIFAR-10, checksummed) before data, and runs train on one GPU per run.
#   (fetch) ─ data ────┬─ train[run] (dense, hesso_s*, cric_s*, magnitude_s*, dhspg_s*, sweeps) ─┐
#   zig partition ─────┘                                                                        ├─ evaluate ─ report
#                                                       (compact subnet, equivalence, accounting)┘
HE_D, HE_M, HE_R = "data/hesso", "models/hesso", "results/hesso"
HE_RUNS = list(CFG["hesso"].evaluate.runs) or list(CFG["hesso"].runs)  # this scale's runs
# Matched runs (runs.<name>.match): pruned to the group count their DHSPG run reached; they train after it.
HE_MATCH = {r: CFG["hesso"].runs[r].match for r in HE_RUNS if CFG["hesso"].runs[r].get("match")}


rule hesso:
    """Everything for HESSO at the chosen scale: its metrics and its report."""
    input:
        f"{HE_R}/accuracy.json",
        f"{HE_R}/report.md",


# Full scale: CIFAR-10's python release, MD5-checked (steps.hesso.fetch).
HE_RAW = [f"{HE_D}/cifar10.lock.json"] if CFG["hesso"].data.source == "cifar10" else []


rule hesso_fetch:
    input:
        code("steps.hesso.fetch", scale_free=True),  # a download: the same at every scale
    output:
        raw=directory(f"{HE_D}/cifar10"),
        lock=f"{HE_D}/cifar10.lock.json",
    params:
        trigger=trigger("hesso", "fetch"),
        args=step_args("hesso", "fetch"),
        cache=f"{HE_D}/downloads",
    threads: res("hesso", "fetch", "threads", 1)
    resources:
        **rule_resources("hesso", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/hesso/fetch.log",
    benchmark:
        "benchmarks/hesso/fetch.tsv"
    shell:
        "python -m steps.hesso.fetch {params.args} threads={threads} io.cache={params.cache} "
        "io.out={output.raw} io.lock={output.lock} > {log} 2>&1"


rule hesso_data:
    input:
        code("steps.hesso.data"),
        raw=HE_RAW,
    output:
        f"{HE_D}/images.npz",
    params:
        trigger=trigger("hesso", "data"),
        args=step_args("hesso", "data"),
        raw=f"{HE_D}/cifar10",
    threads: res("hesso", "data", "threads", 1)
    resources:
        **rule_resources("hesso", "data"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/hesso/data.log",
    benchmark:
        "benchmarks/hesso/data.tsv"
    shell:
        "python -m steps.hesso.data {params.args} threads={threads} io.raw={params.raw} io.out={output} > {log} 2>&1"


rule hesso_partition:
    input:
        code("steps.hesso.partition"),
    output:
        f"{HE_M}/zig_groups.json",
    params:
        trigger=trigger("hesso", "partition"),
        args=step_args("hesso", "partition"),
    threads: res("hesso", "partition", "threads", 1)
    resources:
        **rule_resources("hesso", "partition"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/hesso/partition.log",
    benchmark:
        "benchmarks/hesso/partition.tsv"
    shell:
        "python -m steps.hesso.partition {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule hesso_train:
    input:
        code("steps.hesso.train"),
        data=f"{HE_D}/images.npz",
        partition=f"{HE_M}/zig_groups.json",
        match=lambda w: [f"{HE_M}/{HE_MATCH[w.run]}.pt"] if w.run in HE_MATCH else [],
    output:
        f"{HE_M}/{{run}}.pt",
    wildcard_constraints:
        run="|".join(HE_RUNS),
    params:
        trigger=trigger("hesso", "train"),
        args=step_args("hesso", "train"),
        match=lambda w: f"io.match={HE_M}/{HE_MATCH[w.run]}.pt" if w.run in HE_MATCH else "",
    threads: res("hesso", "train", "threads", 1)
    resources:
        **rule_resources("hesso", "train", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/hesso/train_{run}.log",
    benchmark:
        "benchmarks/hesso/train_{run}.tsv"
    shell:
        "{resources.launch} -m steps.hesso.train {params.args} threads={threads} io.run={wildcards.run} "
        "{params.match} io.data={input.data} io.partition={input.partition} io.out={output} > {log} 2>&1"


rule hesso_evaluate:
    input:
        code("steps.hesso.evaluate"),
        data=f"{HE_D}/images.npz",
        partition=f"{HE_M}/zig_groups.json",
        runs=expand(f"{HE_M}/{{run}}.pt", run=HE_RUNS),
    output:
        accuracy=f"{HE_R}/accuracy.json",
        sensitivity=f"{HE_R}/sensitivity.json",
        equivalence=f"{HE_R}/equivalence.json",
    params:
        trigger=trigger("hesso", "evaluate"),
        args=step_args("hesso", "evaluate"),
    threads: res("hesso", "evaluate", "threads", 1)
    resources:
        **rule_resources("hesso", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/hesso/evaluate.log",
    benchmark:
        "benchmarks/hesso/evaluate.tsv"
    shell:
        "python -m steps.hesso.evaluate {params.args} threads={threads} io.data={input.data} "
        f"io.partition={{input.partition}} io.models={HE_M} io.results={HE_R} > {{log}} 2>&1"
