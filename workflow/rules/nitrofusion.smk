# NitroFusion (arXiv 2412.02030): dynamic adversarial fine-tuning of a one-step student.
# Miniature DAG (smoke, mini); the full-scale DAG is in nitrofusion_full.smk.
# It builds on InstaFlow's outputs through declared inputs: the 1-RF teacher (frozen
# discriminator backbone and multi-step "real" sampler), the distilled one-step student (the
# start, stand-in for DMD2 / Hyper-SD), the captioned digits and the FID classifier.
#   instaflow teacher rf1 ──────┬─ adversarial (per start and seed: every arm) ─ evaluate ─ report
#   instaflow distill_rf2 ──────┘                                (fid_clf, digits) ┘
NF_M, NF_R = "models/nitrofusion", "results/nitrofusion"
NF_IF_D, NF_IF_M = "data/instaflow", "models/instaflow"


rule nitrofusion:
    """Everything for NitroFusion at the chosen scale: its metrics and its report."""
    input:
        f"{NF_R}/fid.json",
        f"{NF_R}/report.md",


rule nitrofusion_adversarial:
    input:
        code("steps.nitrofusion.adversarial"),
        teacher=f"{NF_IF_M}/rf1_s{{seed}}.pt",
        student=f"{NF_IF_M}/distill_rf2_s{{seed}}.pt",
        digits=f"{NF_IF_D}/digits.npz",
        captions=f"{NF_IF_D}/caption_emb.npz",
    output:
        f"{NF_M}/adversarial_{{start}}_s{{seed}}.pt",
    wildcard_constraints:
        start="|".join(CFG["nitrofusion"].adversarial.starts),
    params:
        trigger=trigger("nitrofusion", "adversarial"),
        args=step_args("nitrofusion", "adversarial"),
    threads: res("nitrofusion", "adversarial", "threads", 1)
    resources:
        **rule_resources("nitrofusion", "adversarial"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/adversarial_{start}_s{seed}.log",
    benchmark:
        "benchmarks/nitrofusion/adversarial_{start}_s{seed}.tsv"
    shell:
        "python -m steps.nitrofusion.adversarial {params.args} 'adversarial.starts=[{wildcards.start}]' "
        "seed={wildcards.seed} threads={threads} "
        "io.teacher={input.teacher} io.student={input.student} io.digits={input.digits} "
        "io.captions={input.captions} io.out={output} > {log} 2>&1"


rule nitrofusion_evaluate:
    input:
        code("steps.nitrofusion.evaluate"),
        digits=f"{NF_IF_D}/digits.npz",
        captions=f"{NF_IF_D}/caption_emb.npz",
        table=f"{NF_IF_D}/captions.parquet",
        clf=f"{NF_IF_M}/fid_clf.pt",
        teachers=per_seed("nitrofusion", f"{NF_IF_M}/rf1_s{{seed}}.pt"),
        students=per_seed("nitrofusion", f"{NF_IF_M}/distill_rf2_s{{seed}}.pt"),
        tuned=expand(f"{NF_M}/adversarial_{{start}}_s{{seed}}.pt", start=CFG["nitrofusion"].adversarial.starts,
                     seed=CFG["nitrofusion"].seeds),
    output:
        fid=f"{NF_R}/fid.json",
        prompt_acc=f"{NF_R}/prompt_acc.json",
        coverage=f"{NF_R}/coverage.json",
        d_overfit=f"{NF_R}/d_overfit.json",
        samples=f"{NF_R}/samples.npz",
    params:
        trigger=trigger("nitrofusion", "evaluate"),
        args=step_args("nitrofusion", "evaluate"),
    threads: res("nitrofusion", "evaluate", "threads", 2)
    resources:
        **rule_resources("nitrofusion", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/evaluate.log",
    benchmark:
        "benchmarks/nitrofusion/evaluate.tsv"
    shell:
        "python -m steps.nitrofusion.evaluate {params.args} threads={threads} io.digits={input.digits} "
        "io.captions={input.captions} io.caption_table={input.table} io.fid_clf={input.clf} "
        f"io.instaflow_models={NF_IF_M} io.models={NF_M} io.results={NF_R} > {{log}} 2>&1"
