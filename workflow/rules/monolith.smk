# Monolith (arXiv 2209.07663): collisionless embedding table, frequency filter + expiry,
# online training with parameter sync, snapshot restore. Steps in steps/monolith; CPU only.
#   stream ──┬─ collisionless (E1: cuckoo vs hash trick) ─┐
#            ├─ memory (E2: filter × expiry) ─────────────┤
#            ├─ sync (E3: serving-PS sync interval) ──────┤
#            └─ failover (E4: snapshot restore) ──────────┼─ report
#   cuckoo (table unit test) ─────────────────────────────┤
#   [fetch ml-25m, full] ─ movielens_data ─ movielens ────┘   (not at smoke: needs R)
MO_D, MO_R = "data/monolith", "results/monolith"


rule monolith:
    """Everything for Monolith at the chosen scale: its metrics and its report."""
    input:
        expand(f"{MO_R}/{{m}}.json", m=CFG["monolith"].report.metrics),
        f"{MO_R}/report.md",


rule monolith_stream:
    input:
        code("steps.monolith.stream"),
    output:
        f"{MO_D}/stream.parquet",
    params:
        trigger=trigger("monolith", "stream"),
        args=step_args("monolith", "stream"),
    threads: res("monolith", "stream", "threads", 1)
    resources:
        **rule_resources("monolith", "stream"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/stream.log",
    benchmark:
        "benchmarks/monolith/stream.tsv"
    shell:
        "python -m steps.monolith.stream {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule monolith_cuckoo:
    input:
        code("steps.monolith.cuckoo"),
    output:
        f"{MO_R}/cuckoo.json",
    params:
        trigger=trigger("monolith", "cuckoo"),
        args=step_args("monolith", "cuckoo"),
    threads: res("monolith", "cuckoo", "threads", 1)
    resources:
        **rule_resources("monolith", "cuckoo"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/cuckoo.log",
    benchmark:
        "benchmarks/monolith/cuckoo.tsv"
    shell:
        "python -m steps.monolith.cuckoo {params.args} threads={threads} io.metrics={output} > {log} 2>&1"


# One rule per experiment (E1-E4), each reading the stream.
rule monolith_collisionless:
    input:
        code("steps.monolith.collisionless"),
        stream=f"{MO_D}/stream.parquet",
    output:
        f"{MO_R}/collisionless.json",
    params:
        trigger=trigger("monolith", "collisionless"),
        args=step_args("monolith", "collisionless"),
    threads: res("monolith", "collisionless", "threads", 1)
    resources:
        **rule_resources("monolith", "collisionless"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/collisionless.log",
    benchmark:
        "benchmarks/monolith/collisionless.tsv"
    shell:
        "python -m steps.monolith.collisionless {params.args} threads={threads} io.stream={input.stream} "
        "io.metrics={output} > {log} 2>&1"


rule monolith_memory:
    input:
        code("steps.monolith.memory"),
        stream=f"{MO_D}/stream.parquet",
    output:
        f"{MO_R}/memory.json",
    params:
        trigger=trigger("monolith", "memory"),
        args=step_args("monolith", "memory"),
    threads: res("monolith", "memory", "threads", 1)
    resources:
        **rule_resources("monolith", "memory"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/memory.log",
    benchmark:
        "benchmarks/monolith/memory.tsv"
    shell:
        "python -m steps.monolith.memory {params.args} threads={threads} io.stream={input.stream} "
        "io.metrics={output} > {log} 2>&1"


rule monolith_sync:
    input:
        code("steps.monolith.sync"),
        stream=f"{MO_D}/stream.parquet",
    output:
        f"{MO_R}/sync.json",
    params:
        trigger=trigger("monolith", "sync"),
        args=step_args("monolith", "sync"),
    threads: res("monolith", "sync", "threads", 1)
    resources:
        **rule_resources("monolith", "sync"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/sync.log",
    benchmark:
        "benchmarks/monolith/sync.tsv"
    shell:
        "python -m steps.monolith.sync {params.args} threads={threads} io.stream={input.stream} "
        "io.metrics={output} > {log} 2>&1"


rule monolith_failover:
    input:
        code("steps.monolith.failover"),
        stream=f"{MO_D}/stream.parquet",
    output:
        f"{MO_R}/failover.json",
    params:
        trigger=trigger("monolith", "failover"),
        args=step_args("monolith", "failover"),
    threads: res("monolith", "failover", "threads", 1)
    resources:
        **rule_resources("monolith", "failover"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/failover.log",
    benchmark:
        "benchmarks/monolith/failover.tsv"
    shell:
        "python -m steps.monolith.failover {params.args} threads={threads} io.stream={input.stream} "
        "io.metrics={output} > {log} 2>&1"


# Full scale: the GroupLens release, downloaded with a checksum. No code() input: editing the
# downloader must not re-download.
rule monolith_fetch:
    output:
        out=directory(f"{MO_D}/ml-25m"),
        lock=f"{MO_D}/ml-25m.lock.json",
    params:
        trigger=trigger("monolith", "fetch"),
        args=step_args("monolith", "fetch"),
        cache=f"{MO_D}/downloads",  # not an output: Snakemake never deletes a half-done download
    threads: res("monolith", "fetch", "threads", 1)
    resources:
        **rule_resources("monolith", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/fetch.log",
    benchmark:
        "benchmarks/monolith/fetch.tsv"
    shell:
        "python -m steps.monolith.fetch {params.args} threads={threads} io.cache={params.cache} "
        "io.out={output.out} io.lock={output.lock} > {log} 2>&1"


# The MovieLens stream: an Rscript export of r-cran-dslabs at mini (no network), the fetched
# GroupLens release at full (movielens.source).
rule monolith_movielens_data:
    input:
        code("steps.monolith.movielens_data"),
        release=[f"{MO_D}/ml-25m"] if CFG["monolith"].movielens.source == "grouplens" else [],
    output:
        f"{MO_D}/movielens.parquet",
    params:
        trigger=trigger("monolith", "movielens_data"),
        args=step_args("monolith", "movielens_data"),
        release=lambda w, input: f"io.release={input.release[0]}" if input.release else "",
    threads: res("monolith", "movielens_data", "threads", 1)
    resources:
        **rule_resources("monolith", "movielens_data"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/movielens_data.log",
    benchmark:
        "benchmarks/monolith/movielens_data.tsv"
    shell:
        "python -m steps.monolith.movielens_data {params.args} threads={threads} {params.release} "
        "io.out={output} > {log} 2>&1"


rule monolith_movielens:
    input:
        code("steps.monolith.movielens"),
        stream=f"{MO_D}/movielens.parquet",
    output:
        f"{MO_R}/movielens.json",
    params:
        trigger=trigger("monolith", "movielens"),
        args=step_args("monolith", "movielens"),
    threads: res("monolith", "movielens", "threads", 1)
    resources:
        **rule_resources("monolith", "movielens"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/monolith/movielens.log",
    benchmark:
        "benchmarks/monolith/movielens.tsv"
    shell:
        "python -m steps.monolith.movielens {params.args} threads={threads} io.stream={input.stream} "
        "io.metrics={output} > {log} 2>&1"
