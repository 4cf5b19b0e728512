# Any-Size-Diffusion (arXiv 2308.16582): ARAD multi-ratio bucketed training, then FSTD tiled
# super-resolution. Miniature DAG (smoke, mini); the full-scale DAG is in asd_full.smk.
# sample_eval reads InstaFlow's pipeline-trained digits classifier (prompt accuracy, FID).
#   gen_data ─┬─ train_gen[square|arad] ─ sample_eval (+ instaflow fid_clf) ─┬─ report
#             └─ train_sr ─ upscale[non_overlap, overlap, fstd, whole] ───────┘
ASD_D, ASD_M, ASD_R = "data/asd", "models/asd", "results/asd"


rule asd:
    """Everything for Any-Size-Diffusion at the chosen scale: its metrics and its report."""
    input:
        f"{ASD_R}/composition.json",
        f"{ASD_R}/fstd.json",
        f"{ASD_R}/report.md",


rule asd_gen_data:
    input:
        code("steps.asd.gen_data"),
    output:
        buckets=f"{ASD_D}/buckets.npz",
        sr=f"{ASD_D}/sr_pairs.npz",
    params:
        trigger=trigger("asd", "gen_data"),
        args=step_args("asd", "gen_data"),
    threads: res("asd", "gen_data", "threads", 1)
    resources:
        **rule_resources("asd", "gen_data"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/gen_data.log",
    benchmark:
        "benchmarks/asd/gen_data.tsv"
    shell:
        "python -m steps.asd.gen_data {params.args} threads={threads} "
        "io.buckets={output.buckets} io.sr={output.sr} > {log} 2>&1"


rule asd_train_gen:
    """Stage 1 (ARAD §3.1): the same flow trained on the square bucket only or on every bucket."""
    input:
        code("steps.asd.train_gen"),
        buckets=f"{ASD_D}/buckets.npz",
    output:
        f"{ASD_M}/gen_{{arm}}.pt",
    wildcard_constraints:
        arm="square|arad",
    params:
        trigger=trigger("asd", "train_gen"),
        args=step_args("asd", "train_gen"),
    threads: res("asd", "train_gen", "threads", 1)
    resources:
        **rule_resources("asd", "train_gen", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/train_gen_{arm}.log",
    benchmark:
        "benchmarks/asd/train_gen_{arm}.tsv"
    shell:
        "{resources.launch} -m steps.asd.train_gen {params.args} train_gen.arm={wildcards.arm} threads={threads} "
        "io.buckets={input.buckets} io.out={output} > {log} 2>&1"


rule asd_sample_eval:
    """Composition per canvas bucket for square-only, ARAD and square + tiles."""
    input:
        code("steps.asd.sample_eval"),
        buckets=f"{ASD_D}/buckets.npz",
        square=f"{ASD_M}/gen_square.pt",
        arad=f"{ASD_M}/gen_arad.pt",
        clf="models/instaflow/fid_clf.pt",
    output:
        metrics=f"{ASD_R}/composition.json",
        samples=f"{ASD_R}/samples.npz",
    params:
        trigger=trigger("asd", "sample_eval"),
        args=step_args("asd", "sample_eval"),
    threads: res("asd", "sample_eval", "threads", 1)
    resources:
        **rule_resources("asd", "sample_eval"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/sample_eval.log",
    benchmark:
        "benchmarks/asd/sample_eval.tsv"
    shell:
        "python -m steps.asd.sample_eval {params.args} threads={threads} io.buckets={input.buckets} "
        "io.square={input.square} io.arad={input.arad} io.fid_clf={input.clf} "
        "io.out={output.metrics} io.samples={output.samples} > {log} 2>&1"


rule asd_train_sr:
    """Stage 2: the super-resolution flow (StableSR's role), trained on tile-sized crops."""
    input:
        code("steps.asd.train_sr"),
        sr=f"{ASD_D}/sr_pairs.npz",
    output:
        f"{ASD_M}/sr.pt",
    params:
        trigger=trigger("asd", "train_sr"),
        args=step_args("asd", "train_sr"),
    threads: res("asd", "train_sr", "threads", 1)
    resources:
        **rule_resources("asd", "train_sr", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/train_sr.log",
    benchmark:
        "benchmarks/asd/train_sr.tsv"
    shell:
        "{resources.launch} -m steps.asd.train_sr {params.args} threads={threads} "
        "io.sr={input.sr} io.out={output} > {log} 2>&1"


rule asd_upscale:
    """Stage 2 (FSTD §3.2): every tiling mode in one process, so wall times compare."""
    input:
        code("steps.asd.upscale"),
        sr=f"{ASD_D}/sr_pairs.npz",
        model=f"{ASD_M}/sr.pt",
    output:
        metrics=f"{ASD_R}/fstd.json",
        samples=f"{ASD_R}/upscaled.npz",
    params:
        trigger=trigger("asd", "upscale"),
        args=step_args("asd", "upscale"),
    threads: res("asd", "upscale", "threads", 1)
    resources:
        **rule_resources("asd", "upscale"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/upscale.log",
    benchmark:
        "benchmarks/asd/upscale.tsv"
    shell:
        "python -m steps.asd.upscale {params.args} threads={threads} io.sr={input.sr} io.model={input.model} "
        "io.out={output.metrics} io.samples={output.samples} > {log} 2>&1"
