# InstaFlow (arXiv 2309.06380): 1-RF teacher → pairs → reflow (2-RF) → one-step distillation.
# Miniature DAG (smoke, mini); the full-scale DAG is in instaflow_full.smk.
# Reflow and distill generate their teacher's pairs in-process (steps.instaflow.pairs).
# Training rules start their step with {resources.launch}: python for one process, torchrun or
# srun over resources.<phase>.gpu (× nodes) processes (common.smk, steps.core.distributed).
#   digits ──┬─ fid_features ───────────────────────────────┐
#   captions ┴─ teacher (rf1) ─┬─ reflow (rf2) ─ distill_rf2 ─┴─ evaluate ─ report
#                              └─ distill_rf1 ────────────────┘
IF_D, IF_M, IF_R = "data/instaflow", "models/instaflow", "results/instaflow"

rule instaflow:
    """Everything for InstaFlow at the chosen scale: its metrics and its report."""
    input:
        f"{IF_R}/fid.json",
        f"{IF_R}/report.md",


rule instaflow_digits:
    input:
        code("steps.instaflow.digits"),
    output:
        digits=f"{IF_D}/digits.npz",
        table=f"{IF_D}/captions.parquet",
    params:
        trigger=trigger("instaflow", "digits"),
        args=step_args("instaflow", "digits"),
    threads: res("instaflow", "digits", "threads", 1)
    resources:
        **rule_resources("instaflow", "digits"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/digits.log",
    benchmark:
        "benchmarks/instaflow/digits.tsv"
    shell:
        "python -m steps.instaflow.digits {params.args} threads={threads} "
        "io.out={output.digits} io.captions={output.table} > {log} 2>&1"


rule instaflow_captions:
    input:
        code("steps.instaflow.captions"),
    output:
        f"{IF_D}/caption_emb.npz",
    params:
        trigger=trigger("instaflow", "captions"),
        args=step_args("instaflow", "captions"),
    threads: res("instaflow", "captions", "threads", 1)
    resources:
        **rule_resources("instaflow", "captions"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/captions.log",
    benchmark:
        "benchmarks/instaflow/captions.tsv"
    shell:
        "python -m steps.instaflow.captions {params.args} threads={threads} io.out={output} > {log} 2>&1"


rule instaflow_fid_features:
    input:
        code("steps.instaflow.fid_features"),
        digits=f"{IF_D}/digits.npz",
    output:
        clf=f"{IF_M}/fid_clf.pt",
        metrics=f"{IF_R}/fid_features.json",
    params:
        trigger=trigger("instaflow", "fid_features"),
        args=step_args("instaflow", "fid_features"),
    threads: res("instaflow", "fid_features", "threads", 1)
    resources:
        **rule_resources("instaflow", "fid_features", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/fid_features.log",
    benchmark:
        "benchmarks/instaflow/fid_features.tsv"
    shell:
        "{resources.launch} -m steps.instaflow.fid_features {params.args} threads={threads} io.digits={input.digits} "
        "io.out={output.clf} io.metrics={output.metrics} > {log} 2>&1"


rule instaflow_teacher:
    input:
        code("steps.instaflow.teacher"),
        digits=f"{IF_D}/digits.npz",
        captions=f"{IF_D}/caption_emb.npz",
    output:
        f"{IF_M}/rf1_s{{seed}}.pt",
    params:
        trigger=trigger("instaflow", "teacher"),
        args=step_args("instaflow", "teacher"),
    threads: res("instaflow", "teacher", "threads", 1)
    resources:
        **rule_resources("instaflow", "teacher", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/teacher_s{seed}.log",
    benchmark:
        "benchmarks/instaflow/teacher_s{seed}.tsv"
    shell:
        "{resources.launch} -m steps.instaflow.teacher {params.args} seed={wildcards.seed} threads={threads} "
        "io.digits={input.digits} io.captions={input.captions} io.out={output} > {log} 2>&1"


rule instaflow_reflow:
    input:
        code("steps.instaflow.reflow"),
        teacher=f"{IF_M}/rf1_s{{seed}}.pt",
        digits=f"{IF_D}/digits.npz",
        captions=f"{IF_D}/caption_emb.npz",
    output:
        f"{IF_M}/rf2_s{{seed}}.pt",
    params:
        trigger=trigger("instaflow", "reflow"),
        args=step_args("instaflow", "reflow"),
    threads: res("instaflow", "reflow", "threads", 1)
    resources:
        **rule_resources("instaflow", "reflow", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/reflow_s{seed}.log",
    benchmark:
        "benchmarks/instaflow/reflow_s{seed}.tsv"
    shell:
        "{resources.launch} -m steps.instaflow.reflow {params.args} seed={wildcards.seed} threads={threads} "
        "io.teacher={input.teacher} io.digits={input.digits} io.captions={input.captions} io.out={output} > {log} 2>&1"


rule instaflow_distill:
    input:
        code("steps.instaflow.distill"),
        teacher=f"{IF_M}/{{flow}}_s{{seed}}.pt",
        digits=f"{IF_D}/digits.npz",
        captions=f"{IF_D}/caption_emb.npz",
    output:
        f"{IF_M}/distill_{{flow}}_s{{seed}}.pt",
    wildcard_constraints:
        flow="rf1|rf2",
    params:
        trigger=trigger("instaflow", "distill"),
        args=step_args("instaflow", "distill"),
    threads: res("instaflow", "distill", "threads", 1)
    resources:
        **rule_resources("instaflow", "distill", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/distill_{flow}_s{seed}.log",
    benchmark:
        "benchmarks/instaflow/distill_{flow}_s{seed}.tsv"
    shell:
        "{resources.launch} -m steps.instaflow.distill {params.args} seed={wildcards.seed} threads={threads} "
        "io.teacher={input.teacher} io.digits={input.digits} io.captions={input.captions} io.out={output} > {log} 2>&1"


rule instaflow_evaluate:
    input:
        code("steps.instaflow.evaluate"),
        digits=f"{IF_D}/digits.npz",
        captions=f"{IF_D}/caption_emb.npz",
        table=f"{IF_D}/captions.parquet",
        clf=f"{IF_M}/fid_clf.pt",
        flows=per_seed("instaflow", f"{IF_M}/rf1_s{{seed}}.pt") + per_seed("instaflow", f"{IF_M}/rf2_s{{seed}}.pt"),
        students=per_seed("instaflow", f"{IF_M}/distill_rf1_s{{seed}}.pt") + per_seed("instaflow", f"{IF_M}/distill_rf2_s{{seed}}.pt"),
    output:
        fid=f"{IF_R}/fid.json",
        straightness=f"{IF_R}/straightness.json",
        prompt_acc=f"{IF_R}/prompt_acc.json",
        sampling_time=f"{IF_R}/sampling_time.json",
        samples=f"{IF_R}/samples.npz",
    params:
        trigger=trigger("instaflow", "evaluate"),
        args=step_args("instaflow", "evaluate"),
        models=lambda w, input: os.path.dirname(input.flows[0]),  # the flows' and students' folder
        results=lambda w, output: os.path.dirname(output.fid),
    threads: res("instaflow", "evaluate", "threads", 2)
    resources:
        **rule_resources("instaflow", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/evaluate.log",
    benchmark:
        "benchmarks/instaflow/evaluate.tsv"
    shell:
        "python -m steps.instaflow.evaluate {params.args} threads={threads} io.digits={input.digits} "
        "io.captions={input.captions} io.caption_table={input.table} io.fid_clf={input.clf} "
        "io.models={params.models} io.results={params.results} > {log} 2>&1"


include: "instaflow_regime.smk"  # the regime study: these rules again, per cell (not in `all`)
