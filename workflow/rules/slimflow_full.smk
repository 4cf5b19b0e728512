# SlimFlow at full scale (CIFAR-10, U-Nets; params/slimflow/full.yaml): the same phases as the
# miniature on real images, with the teacher 1-flow's weights supplied by the user (fetch copies
# them in) and Inception FID-50k. GPU rules: pairs, reflow, distill, fid50k (resources in full.yaml).
#   fetch ─┬─ pairs (teacher) ─┬─ reflow[scratch|standard|anneal|independent] ×seeds
#          │                   └──── distill[naive|fgd] ×seeds (init: the annealed 2-flow)
#          └──────────────────────────────────────────── fid50k ─ report
SF_D, SF_M, SF_R = "data/slimflow", "models/slimflow", "results/slimflow"
SF_INIT = str(CFG["slimflow"].distill.init)
SF_REFLOW_ARMS = ["scratch", "standard", "anneal", "independent"]
SF_DISTILL_ARMS = ["naive", "fgd"]
SF_IMAGES = f"{SF_D}/cifar10_train.npz"
SF_TEACHER_DIR = f"{SF_M}/teacher_1rf"


rule slimflow:
    """Everything for SlimFlow at the chosen scale: its metrics and its report."""
    input:
        f"{SF_R}/fid.json",
        f"{SF_R}/report.md",


rule slimflow_fetch:
    """CIFAR-10 (size- and MD5-checked), Inception and LPIPS weights, and the user's teacher."""
    input:
        code("steps.slimflow.fetch"),
    output:
        images=SF_IMAGES,
        weights=directory(f"{SF_D}/weights"),
        teacher=directory(SF_TEACHER_DIR),
    params:
        trigger=trigger("slimflow", "fetch"),
        args=step_args("slimflow", "fetch"),
    threads: res("slimflow", "fetch", "threads", 2)
    resources:
        **rule_resources("slimflow", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/slimflow/fetch.log",
    benchmark:
        "benchmarks/slimflow/fetch.tsv"
    shell:
        "python -m steps.slimflow.fetch {params.args} io.cache={SF_D}/cache io.out={output.images} "
        "io.weights={output.weights} io.teacher={output.teacher} > {log} 2>&1"


rule slimflow_pairs:
    """The teacher's coupled pairs (GPU)."""
    input:
        code("steps.slimflow.pairs"),
        teacher=SF_TEACHER_DIR,
        images=SF_IMAGES,
    output:
        f"{SF_D}/pairs.npz",
    params:
        trigger=trigger("slimflow", "pairs"),
        args=step_args("slimflow", "pairs"),
    threads: res("slimflow", "pairs", "threads", 8)
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
        "io.images={input.images} io.out={output} > {log} 2>&1"


rule slimflow_reflow:
    """A small 2-flow of one reflow arm and training seed (GPU, data-parallel)."""
    input:
        code("steps.slimflow.reflow"),
        pairs=f"{SF_D}/pairs.npz",
        images=SF_IMAGES,
    output:
        f"{SF_M}/2rf_small_{{arm}}_s{{seed}}.pt",
    wildcard_constraints:
        arm="|".join(SF_REFLOW_ARMS),
    params:
        trigger=trigger("slimflow", "reflow"),
        args=step_args("slimflow", "reflow"),
    threads: res("slimflow", "reflow", "threads", 8)
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
        "threads={threads} io.pairs={input.pairs} io.images={input.images} io.out={output} > {log} 2>&1"


rule slimflow_distill:
    """A small one-step student of one distillation arm and training seed (GPU, LPIPS)."""
    input:
        code("steps.slimflow.distill"),
        init=f"{SF_M}/2rf_small_{SF_INIT}_s{{seed}}.pt",
        pairs=f"{SF_D}/pairs.npz",
        images=SF_IMAGES,
        weights=f"{SF_D}/weights",
    output:
        f"{SF_M}/student_{{arm}}_s{{seed}}.pt",
    wildcard_constraints:
        arm="|".join(SF_DISTILL_ARMS),
    params:
        trigger=trigger("slimflow", "distill"),
        args=step_args("slimflow", "distill"),
    threads: res("slimflow", "distill", "threads", 8)
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
        "threads={threads} io.init={input.init} io.pairs={input.pairs} io.images={input.images} "
        "io.lpips={input.weights} io.out={output} > {log} 2>&1"


rule slimflow_fid50k:
    """Inception FID-50k of every small 2-flow and student, one step (GPU)."""
    input:
        code("steps.slimflow.fid50k"),
        images=SF_IMAGES,
        weights=f"{SF_D}/weights",
        flows=[f for a in SF_REFLOW_ARMS for f in per_seed("slimflow", f"{SF_M}/2rf_small_{a}_s{{seed}}.pt")],
        students=[f for a in SF_DISTILL_ARMS for f in per_seed("slimflow", f"{SF_M}/student_{a}_s{{seed}}.pt")],
    output:
        fid=f"{SF_R}/fid.json",
        params=f"{SF_R}/params.json",
    params:
        trigger=trigger("slimflow", "fid50k"),
        args=step_args("slimflow", "fid50k"),
    threads: res("slimflow", "fid50k", "threads", 8)
    resources:
        **rule_resources("slimflow", "fid50k"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/slimflow/fid50k.log",
    benchmark:
        "benchmarks/slimflow/fid50k.tsv"
    shell:
        "python -m steps.slimflow.fid50k {params.args} threads={threads} io.images={input.images} "
        f"io.inception={{input.weights}} io.models={SF_M} io.results={SF_R} > {{log}} 2>&1"
