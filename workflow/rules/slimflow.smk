# SlimFlow (arXiv 2407.12718): a large teacher's pairs → small 2-flows by reflow (Annealing Reflow
# against scratch and standard reflow) → small one-step students (Flow-Guided against naive
# distillation) → evaluation beside InstaFlow's larger student.
# The large teacher, the captioned digits and the FID classifier are InstaFlow's (declared inputs).
#   instaflow: rf1_s{teacher} ─ pairs ─┬─ reflow[scratch|standard|anneal|independent] ×seeds
#                                      └──── distill[naive|fgd] ×seeds (init: the annealed 2-flow)
#   instaflow: distill_rf2_s{teacher}, fid_clf ──────────────────── evaluate ─ report
SF_D, SF_M, SF_R = "data/slimflow", "models/slimflow", "results/slimflow"
SF_TEACHER = int(CFG["slimflow"].teacher.seed)
SF_INIT = str(CFG["slimflow"].distill.init)
SF_REFLOW_ARMS = ["scratch", "standard", "anneal", "independent"]
SF_DISTILL_ARMS = ["naive", "fgd"]


rule slimflow:
    """Everything for SlimFlow at the chosen scale: its metrics and its report."""
    input:
        f"{SF_R}/fid.json",
        f"{SF_R}/report.md",


rule slimflow_pairs:
    """The large teacher's coupled pairs (z0, ODE[teacher](z0 | c))."""
    input:
        code("steps.slimflow.pairs"),
        teacher=f"models/instaflow/rf1_s{SF_TEACHER}.pt",
        digits="data/instaflow/digits.npz",
        captions="data/instaflow/caption_emb.npz",
    output:
        f"{SF_D}/pairs.npz",
    params:
        trigger=trigger("slimflow", "pairs"),
        args=step_args("slimflow", "pairs"),
    threads: res("slimflow", "pairs", "threads", 1)
    resources:
        **rule_resources("slimflow", "pairs"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/slimflow/pairs.log",
    benchmark:
        "benchmarks/slimflow/pairs.tsv"
    shell:
        "python -m steps.slimflow.pairs {params.args} threads={threads} io.teacher={input.teacher} "
        "io.digits={input.digits} io.captions={input.captions} io.out={output} > {log} 2>&1"


rule slimflow_reflow:
    """A small 2-flow of one reflow arm and training seed (Annealing Reflow or a baseline)."""
    input:
        code("steps.slimflow.reflow"),
        pairs=f"{SF_D}/pairs.npz",
        digits="data/instaflow/digits.npz",
        captions="data/instaflow/caption_emb.npz",
    output:
        f"{SF_M}/2rf_small_{{arm}}_s{{seed}}.pt",
    wildcard_constraints:
        arm="|".join(SF_REFLOW_ARMS),
    params:
        trigger=trigger("slimflow", "reflow"),
        args=step_args("slimflow", "reflow"),
    threads: res("slimflow", "reflow", "threads", 1)
    resources:
        **rule_resources("slimflow", "reflow", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/slimflow/reflow_{arm}_s{seed}.log",
    benchmark:
        "benchmarks/slimflow/reflow_{arm}_s{seed}.tsv"
    shell:
        "{resources.launch} -m steps.slimflow.reflow {params.args} reflow.arm={wildcards.arm} seed={wildcards.seed} "
        "threads={threads} io.pairs={input.pairs} io.digits={input.digits} io.captions={input.captions} "
        "io.out={output} > {log} 2>&1"


rule slimflow_distill:
    """A small one-step student of one distillation arm (Flow-Guided or naive) and training seed."""
    input:
        code("steps.slimflow.distill"),
        init=f"{SF_M}/2rf_small_{SF_INIT}_s{{seed}}.pt",
        pairs=f"{SF_D}/pairs.npz",
        digits="data/instaflow/digits.npz",
        captions="data/instaflow/caption_emb.npz",
    output:
        f"{SF_M}/student_{{arm}}_s{{seed}}.pt",
    wildcard_constraints:
        arm="|".join(SF_DISTILL_ARMS),
    params:
        trigger=trigger("slimflow", "distill"),
        args=step_args("slimflow", "distill"),
    threads: res("slimflow", "distill", "threads", 1)
    resources:
        **rule_resources("slimflow", "distill", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/slimflow/distill_{arm}_s{seed}.log",
    benchmark:
        "benchmarks/slimflow/distill_{arm}_s{seed}.tsv"
    shell:
        "{resources.launch} -m steps.slimflow.distill {params.args} distill.arm={wildcards.arm} seed={wildcards.seed} "
        "threads={threads} io.init={input.init} io.pairs={input.pairs} io.digits={input.digits} "
        "io.captions={input.captions} io.out={output} > {log} 2>&1"


rule slimflow_evaluate:
    """One-step FID, parameters, straightness and sample grids of every small model, beside the
    teacher and InstaFlow's student."""
    input:
        code("steps.slimflow.evaluate"),
        digits="data/instaflow/digits.npz",
        captions="data/instaflow/caption_emb.npz",
        table="data/instaflow/captions.parquet",
        clf="models/instaflow/fid_clf.pt",
        teacher=f"models/instaflow/rf1_s{SF_TEACHER}.pt",
        instaflow_student=f"models/instaflow/distill_rf2_s{SF_TEACHER}.pt",
        flows=[f for a in SF_REFLOW_ARMS for f in per_seed("slimflow", f"{SF_M}/2rf_small_{a}_s{{seed}}.pt")],
        students=[f for a in SF_DISTILL_ARMS for f in per_seed("slimflow", f"{SF_M}/student_{a}_s{{seed}}.pt")],
    output:
        fid=f"{SF_R}/fid.json",
        params=f"{SF_R}/params.json",
        straightness=f"{SF_R}/straightness.json",
        schedule=f"{SF_R}/schedule.json",
        samples=f"{SF_R}/samples.npz",
    params:
        trigger=trigger("slimflow", "evaluate"),
        args=step_args("slimflow", "evaluate"),
    threads: res("slimflow", "evaluate", "threads", 2)
    resources:
        **rule_resources("slimflow", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/slimflow/evaluate.log",
    benchmark:
        "benchmarks/slimflow/evaluate.tsv"
    shell:
        "python -m steps.slimflow.evaluate {params.args} threads={threads} io.digits={input.digits} "
        "io.captions={input.captions} io.caption_table={input.table} io.fid_clf={input.clf} "
        "io.teacher={input.teacher} io.instaflow_student={input.instaflow_student} "
        f"io.models={SF_M} io.results={SF_R} > {{log}} 2>&1"
