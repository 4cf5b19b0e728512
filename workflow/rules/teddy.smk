# TEDDY (arXiv 2402.01261): graph lottery tickets in one shot. The same DAG at every scale; at full
# the graph comes from the fetched Planetoid files instead of the seeded DC-CSBM.
#   [fetch] → graph → dense ──────────────┐
#                   └→ score ──→ sweep[teddy|teddy_no_kd|inverted|random|ugs] → compare → report
TD_D, TD_M, TD_R = "data/teddy", "models/teddy", "results/teddy"
TD_ARMS = ["teddy", "teddy_no_kd", "inverted", "random", "ugs"]
TD_PLANETOID = CFG["teddy"].graph.source == "planetoid"


rule teddy:
    """Everything for teddy at the chosen scale: its metrics and its report."""
    input:
        f"{TD_R}/frontier.json",
        f"{TD_R}/report.md",


rule teddy_fetch:
    output:
        out=directory(f"{TD_D}/planetoid"),
        lock=f"{TD_D}/planetoid.lock.json",
    params:
        trigger=trigger("teddy", "fetch"),
        args=step_args("teddy", "fetch"),
    threads: res("teddy", "fetch", "threads", 1)
    resources:
        **rule_resources("teddy", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/teddy/fetch.log",
    benchmark:
        "benchmarks/teddy/fetch.tsv"
    shell:
        "python -m steps.teddy.fetch {params.args} io.out={output.out} io.lock={output.lock} > {log} 2>&1"


rule teddy_graph:
    input:
        code("steps.teddy.graph"),
        raw=[f"{TD_D}/planetoid"] if TD_PLANETOID else [],
    output:
        graph=f"{TD_D}/graph.npz",
        metrics=f"{TD_R}/graph.json",
    params:
        trigger=trigger("teddy", "graph"),
        args=step_args("teddy", "graph"),
        raw=f"io.raw={TD_D}/planetoid" if TD_PLANETOID else "",
    threads: res("teddy", "graph", "threads", 1)
    resources:
        **rule_resources("teddy", "graph"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/teddy/graph.log",
    benchmark:
        "benchmarks/teddy/graph.tsv"
    shell:
        "python -m steps.teddy.graph {params.args} threads={threads} {params.raw} io.out={output.graph} "
        "io.metrics={output.metrics} > {log} 2>&1"


rule teddy_dense:
    input:
        code("steps.teddy.dense"),
        graph=f"{TD_D}/graph.npz",
    output:
        model=f"{TD_M}/dense.pt",
        metrics=f"{TD_R}/dense.json",
    params:
        trigger=trigger("teddy", "dense"),
        args=step_args("teddy", "dense"),
    threads: res("teddy", "dense", "threads", 1)
    resources:
        **rule_resources("teddy", "dense"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/teddy/dense.log",
    benchmark:
        "benchmarks/teddy/dense.tsv"
    shell:
        "python -m steps.teddy.dense {params.args} threads={threads} io.graph={input.graph} io.out={output.model} "
        "io.metrics={output.metrics} > {log} 2>&1"


rule teddy_score:
    input:
        code("steps.teddy.score"),
        graph=f"{TD_D}/graph.npz",
    output:
        score=f"{TD_D}/edge_score.npz",
        metrics=f"{TD_R}/score.json",
    params:
        trigger=trigger("teddy", "score"),
        args=step_args("teddy", "score"),
    threads: res("teddy", "score", "threads", 1)
    resources:
        **rule_resources("teddy", "score"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/teddy/score.log",
    benchmark:
        "benchmarks/teddy/score.tsv"
    shell:
        "python -m steps.teddy.score {params.args} threads={threads} io.graph={input.graph} io.out={output.score} "
        "io.metrics={output.metrics} > {log} 2>&1"


rule teddy_sweep:
    input:
        code("steps.teddy.sweep"),
        graph=f"{TD_D}/graph.npz",
        score=f"{TD_D}/edge_score.npz",
        # only the TEDDY family reads the teacher: random and UGS start without waiting for it
        dense=lambda w: [f"{TD_M}/dense.pt"] if w.arm in ("teddy", "teddy_no_kd", "inverted") else [],
    output:
        f"{TD_R}/sweep_{{arm}}.json",
    wildcard_constraints:
        arm="|".join(TD_ARMS),
    params:
        trigger=trigger("teddy", "sweep"),
        args=step_args("teddy", "sweep"),
        dense=lambda w, input: f"io.dense={input.dense}" if input.dense else "",
    threads: res("teddy", "sweep", "threads", 1)
    resources:
        **rule_resources("teddy", "sweep"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/teddy/sweep_{arm}.log",
    benchmark:
        "benchmarks/teddy/sweep_{arm}.tsv"
    shell:
        "python -m steps.teddy.sweep {params.args} threads={threads} io.arm={wildcards.arm} io.graph={input.graph} "
        "io.score={input.score} {params.dense} io.out={output} > {log} 2>&1"


rule teddy_compare:
    input:
        code("steps.teddy.compare"),
        sweeps=expand(f"{TD_R}/sweep_{{arm}}.json", arm=TD_ARMS),
        dense=f"{TD_R}/dense.json",
    output:
        f"{TD_R}/frontier.json",
    params:
        trigger=trigger("teddy", "compare"),
        args=step_args("teddy", "compare"),
    threads: 1
    resources:
        **rule_resources("teddy", "compare"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/teddy/compare.log",
    benchmark:
        "benchmarks/teddy/compare.tsv"
    shell:
        f"python -m steps.teddy.compare {{params.args}} io.results={TD_R} io.out={{output}} > {{log}} 2>&1"
