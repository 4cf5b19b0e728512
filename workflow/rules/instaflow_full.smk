# InstaFlow at full scale (arXiv 2309.06380): Stable Diffusion 1.5, LAION prompts, MS COCO 2017.
# Included by the Snakefile instead of instaflow.smk when --config scale=full. Steps in
# steps/instaflow/sd; parameters and cluster resources in params/instaflow/full.yaml.
#   fetch{sd15,coco,laion,lpips,inception,clip} ─ prompts ─ pairs[sd] ─┬─ reflow (rf2) ─ pairs[rf2] ─ distill[rf2] ─┐
#                                                                       └───────────────────────────── distill[sd] ──┴─ evaluate ─ report
# Training rules (reflow, distill) start one process per GPU with {resources.launch}: torchrun on
# one node, srun over resources.<rule>.nodes nodes (common.smk, steps.core.distributed).
import functools
import json
import os


IFF_D, IFF_M, IFF_R = "data/instaflow", "models/instaflow", "results/instaflow"
IFF_ASSETS = list(CFG["instaflow"].sd.assets)
# Pair shards, named as steps.instaflow.sd.pairs.shard_path names them.
IFF_SHARDS = [f"{i:04d}" for i in range(int(CFG["instaflow"].pairs.shards))]
IFF_PAIRS = f"{IFF_D}/pairs_{{teacher}}/shard{{shard}}.npz"
# Each phase's trigger and step arguments, computed once (the pair jobs share them).
IFF_TRIGGER = functools.cache(lambda phase: trigger_value("instaflow", phase))
IFF_ARGS = functools.cache(lambda phase: step_args_value("instaflow", phase))
rule instaflow:
    """Everything for InstaFlow at the chosen scale: its metrics and its report."""
    input:
        f"{IFF_R}/fid.json",
        f"{IFF_R}/report.md",


# No code() input here: an edit of the downloader must not re-fetch (and so rerun) 200 A100-days.
# The trigger is the asset's own entry, so pinning one checksum refetches that asset only.
rule instaflow_fetch:
    output:
        out=directory(f"{IFF_D}/{{asset}}"),
        lock=f"{IFF_D}/{{asset}}.lock.json",
    wildcard_constraints:
        asset="|".join(IFF_ASSETS),
    params:
        trigger=lambda w: json.dumps(CFG["instaflow"].sd.assets[w.asset], sort_keys=True),
        args=lambda w: IFF_ARGS("fetch"),
        cache=f"{IFF_D}/downloads",  # not an output: Snakemake never deletes a half-done download
    threads: res("instaflow", "fetch", "threads", 1)
    resources:
        **rule_resources("instaflow", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/fetch_{asset}.log",
    benchmark:
        "benchmarks/instaflow/fetch_{asset}.tsv"
    shell:
        "python -m steps.instaflow.sd.fetch {params.args} threads={threads} io.cache={params.cache} "
        "io.{wildcards.asset}={output.out} > {log} 2>&1"


rule instaflow_prompts:
    input:
        code("steps.instaflow.sd.prompts"),
        laion=f"{IFF_D}/laion",
        coco=f"{IFF_D}/coco",
    output:
        train=f"{IFF_D}/prompts_train.parquet",
        eval=f"{IFF_D}/prompts_coco.parquet",
    params:
        trigger=lambda w: IFF_TRIGGER("prompts"),
        args=lambda w: IFF_ARGS("prompts"),
    threads: res("instaflow", "prompts", "threads", 1)
    resources:
        **rule_resources("instaflow", "prompts"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/prompts.log",
    benchmark:
        "benchmarks/instaflow/prompts.tsv"
    shell:
        "python -m steps.instaflow.sd.prompts {params.args} threads={threads} io.laion={input.laion} "
        "io.coco={input.coco} io.train={output.train} io.eval={output.eval} > {log} 2>&1"


rule instaflow_pairs:
    """One shard of (z, ODE[teacher](z | prompt)) pairs: teacher sd for reflow and SD+Distill,
    rf2 for InstaFlow's distillation."""
    input:
        code("steps.instaflow.sd.pairs"),
        sd=f"{IFF_D}/sd15",
        prompts=f"{IFF_D}/prompts_train.parquet",
        rf2=lambda w: [f"{IFF_M}/rf2.pt"] if w.teacher == "rf2" else [],
    output:
        IFF_PAIRS,
    wildcard_constraints:
        teacher="sd|rf2",
        shard=r"\d{4}",
    params:
        trigger=lambda w: IFF_TRIGGER("pairs"),
        args=lambda w: IFF_ARGS("pairs"),
        shard=lambda w: int(w.shard),
        rf2=lambda w, input: f"io.rf2={input.rf2}" if input.rf2 else "",
    resources:
        **rule_resources("instaflow", "pairs"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/pairs_{teacher}/shard{shard}.log",
    benchmark:
        "benchmarks/instaflow/pairs_{teacher}/shard{shard}.tsv"
    shell:
        "python -m steps.instaflow.sd.pairs {params.args} pairs.teacher={wildcards.teacher} pairs.shard={params.shard} "
        "io.sd={input.sd} io.prompts={input.prompts} {params.rf2} io.out={output} > {log} 2>&1"


rule instaflow_reflow:
    input:
        code("steps.instaflow.sd.reflow"),
        sd=f"{IFF_D}/sd15",
        prompts=f"{IFF_D}/prompts_train.parquet",
        pairs=expand(IFF_PAIRS, teacher="sd", shard=IFF_SHARDS),
    output:
        f"{IFF_M}/rf2.pt",
    params:
        trigger=lambda w: IFF_TRIGGER("reflow"),
        args=lambda w: IFF_ARGS("reflow"),
        pairs=lambda w, input: os.path.dirname(input.pairs[0]),
    resources:
        **rule_resources("instaflow", "reflow", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/reflow.log",
    benchmark:
        "benchmarks/instaflow/reflow.tsv"
    shell:
        "{resources.launch} -m steps.instaflow.sd.reflow {params.args} io.sd={input.sd} io.prompts={input.prompts} "
        "io.pairs={params.pairs} io.out={output} > {log} 2>&1"


rule instaflow_distill:
    """One-step distillation, arm rf2 (InstaFlow) or sd (SD+Distill)."""
    input:
        code("steps.instaflow.sd.distill"),
        sd=f"{IFF_D}/sd15",
        prompts=f"{IFF_D}/prompts_train.parquet",
        lpips=f"{IFF_D}/lpips",
        pairs=lambda w: expand(IFF_PAIRS, teacher=w.arm, shard=IFF_SHARDS),
        init=lambda w: [f"{IFF_M}/rf2.pt"] if w.arm == "rf2" else [],
    output:
        f"{IFF_M}/distill_{{arm}}.pt",
    wildcard_constraints:
        arm="sd|rf2",
    params:
        trigger=lambda w: IFF_TRIGGER("distill"),
        args=lambda w: IFF_ARGS("distill"),
        pairs=lambda w, input: os.path.dirname(input.pairs[0]),
        init=lambda w, input: f"io.init={input.init}" if input.init else "",
    resources:
        **rule_resources("instaflow", "distill", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/distill_{arm}.log",
    benchmark:
        "benchmarks/instaflow/distill_{arm}.tsv"
    shell:
        "{resources.launch} -m steps.instaflow.sd.distill {params.args} distill.arm={wildcards.arm} "
        "io.sd={input.sd} io.prompts={input.prompts} io.lpips={input.lpips} io.pairs={params.pairs} "
        "{params.init} io.out={output} > {log} 2>&1"


rule instaflow_evaluate:
    input:
        code("steps.instaflow.sd.evaluate"),
        sd=f"{IFF_D}/sd15",
        rf2=f"{IFF_M}/rf2.pt",
        student_rf2=f"{IFF_M}/distill_rf2.pt",
        student_sd=f"{IFF_M}/distill_sd.pt",
        eval_prompts=f"{IFF_D}/prompts_coco.parquet",
        coco=f"{IFF_D}/coco",
        inception=f"{IFF_D}/inception",
        clip=f"{IFF_D}/clip",
    output:
        fid=f"{IFF_R}/fid.json",
        clip=f"{IFF_R}/clip.json",
        straightness=f"{IFF_R}/straightness.json",
        sampling_time=f"{IFF_R}/sampling_time.json",
    params:
        trigger=lambda w: IFF_TRIGGER("evaluate"),
        args=lambda w: IFF_ARGS("evaluate"),
    resources:
        **rule_resources("instaflow", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/instaflow/evaluate.log",
    benchmark:
        "benchmarks/instaflow/evaluate.tsv"
    shell:
        "python -m steps.instaflow.sd.evaluate {params.args} io.sd={input.sd} io.rf2={input.rf2} "
        "io.student_rf2={input.student_rf2} io.student_sd={input.student_sd} io.eval_prompts={input.eval_prompts} "
        "io.coco={input.coco} io.inception={input.inception} io.clip={input.clip} "
        f"io.results={IFF_R} > {{log}} 2>&1"
