# NitroFusion at full scale (arXiv 2412.02030): SDXL teacher, DMD2 / Hyper-SD one-step students,
# MS COCO 5k evaluation. Included instead of nitrofusion.smk when --config scale=full. Steps in
# steps/nitrofusion/sdxl; parameters and cluster resources in params/nitrofusion/full.yaml.
#   fetch{sdxl,dmd2,hypersd,coco,laion,inception,clip} ─ prompts ─ gen_teacher_reals[shard] ─┐
#   train_nitro[start] (8 GPUs, torchrun) ───────────────────────────────────────────────────┴─ sample_coco5k[start] ─ eval_fid_clip ─ report
import functools
import json
import os


NFF_D, NFF_M, NFF_R = "data/nitrofusion", "models/nitrofusion", "results/nitrofusion"
NFF_ASSETS = list(CFG["nitrofusion"].sd.assets)
NFF_STARTS = list(CFG["nitrofusion"].train.starts)
NFF_SHARDS = [f"{i:04d}" for i in range(int(CFG["nitrofusion"].gen_reals.shards))]
NFF_TRIGGER = functools.cache(lambda phase: trigger_value("nitrofusion", phase))
NFF_ARGS = functools.cache(lambda phase: step_args_value("nitrofusion", phase))


rule nitrofusion:
    """Everything for NitroFusion at the chosen scale: its metrics and its report."""
    input:
        f"{NFF_R}/fid.json",
        f"{NFF_R}/report.md",


# No code() input: an edit of the downloader must not re-fetch (and so rerun) the training.
rule nitrofusion_fetch:
    output:
        out=directory(f"{NFF_D}/{{asset}}"),
        lock=f"{NFF_D}/{{asset}}.lock.json",
    wildcard_constraints:
        asset="|".join(NFF_ASSETS),
    params:
        trigger=lambda w: json.dumps(CFG["nitrofusion"].sd.assets[w.asset], sort_keys=True),
        args=lambda w: NFF_ARGS("fetch"),
        cache=f"{NFF_D}/downloads",
    threads: res("nitrofusion", "fetch", "threads", 1)
    resources:
        **rule_resources("nitrofusion", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/fetch_{asset}.log",
    benchmark:
        "benchmarks/nitrofusion/fetch_{asset}.tsv"
    shell:
        "python -m steps.nitrofusion.sdxl.fetch {params.args} threads={threads} io.cache={params.cache} "
        "io.{wildcards.asset}={output.out} > {log} 2>&1"


rule nitrofusion_prompts:
    input:
        code("steps.nitrofusion.sdxl.prompts"),
        laion=f"{NFF_D}/laion",
        coco=f"{NFF_D}/coco",
    output:
        train=f"{NFF_D}/prompts_train.parquet",
        eval=f"{NFF_D}/prompts_coco.parquet",
    params:
        trigger=lambda w: NFF_TRIGGER("prompts"),
        args=lambda w: NFF_ARGS("prompts"),
    threads: res("nitrofusion", "prompts", "threads", 1)
    resources:
        **rule_resources("nitrofusion", "prompts"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/prompts.log",
    benchmark:
        "benchmarks/nitrofusion/prompts.tsv"
    shell:
        "python -m steps.nitrofusion.sdxl.prompts {params.args} threads={threads} io.laion={input.laion} "
        "io.coco={input.coco} io.train={output.train} io.eval={output.eval} > {log} 2>&1"


rule nitrofusion_gen_teacher_reals:
    """One shard of the multi-step SDXL teacher's images: NitroFusion's "real" samples."""
    input:
        code("steps.nitrofusion.sdxl.gen_reals"),
        sdxl=f"{NFF_D}/sdxl",
        prompts=f"{NFF_D}/prompts_train.parquet",
    output:
        f"{NFF_D}/reals/shard{{shard}}.npz",
    wildcard_constraints:
        shard=r"\d{4}",
    params:
        trigger=lambda w: NFF_TRIGGER("gen_teacher_reals"),
        args=lambda w: NFF_ARGS("gen_teacher_reals"),
        shard=lambda w: int(w.shard),
    resources:
        **rule_resources("nitrofusion", "gen_teacher_reals"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/reals/shard{shard}.log",
    benchmark:
        "benchmarks/nitrofusion/reals/shard{shard}.tsv"
    shell:
        "python -m steps.nitrofusion.sdxl.gen_reals {params.args} gen_reals.shard={params.shard} io.sdxl={input.sdxl} "
        "io.prompts={input.prompts} io.out={output} > {log} 2>&1"


rule nitrofusion_train_nitro:
    """Dynamic adversarial fine-tuning of one start (dmd2 → Realism, hypersd → Vibrant) on 8 GPUs."""
    input:
        code("steps.nitrofusion.sdxl.train"),
        sdxl=f"{NFF_D}/sdxl",
        start=f"{NFF_D}/{{start}}",
        prompts=f"{NFF_D}/prompts_train.parquet",
        reals=expand(f"{NFF_D}/reals/shard{{shard}}.npz", shard=NFF_SHARDS),
    output:
        f"{NFF_M}/nitro_{{start}}.pt",
    wildcard_constraints:
        start="|".join(NFF_STARTS),
    params:
        trigger=lambda w: NFF_TRIGGER("train_nitro"),
        args=lambda w: NFF_ARGS("train_nitro"),
        reals=lambda w, input: os.path.dirname(input.reals[0]),
    resources:
        **rule_resources("nitrofusion", "train_nitro", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/train_nitro_{start}.log",
    benchmark:
        "benchmarks/nitrofusion/train_nitro_{start}.tsv"
    shell:
        "{resources.launch} -m steps.nitrofusion.sdxl.train {params.args} train.start={wildcards.start} "
        "io.sdxl={input.sdxl} io.start={input.start} io.reals={params.reals} io.prompts={input.prompts} "
        "io.out={output} > {log} 2>&1"


rule nitrofusion_sample_coco5k:
    """COCO-5k images of a start before (base) and after NitroFusion, at 1, 2 and 4 steps."""
    input:
        code("steps.nitrofusion.sdxl.sample"),
        sdxl=f"{NFF_D}/sdxl",
        start=f"{NFF_D}/{{start}}",
        tuned=f"{NFF_M}/nitro_{{start}}.pt",
        prompts=f"{NFF_D}/prompts_coco.parquet",
    output:
        directory(f"{NFF_D}/samples_{{start}}"),
    wildcard_constraints:
        start="|".join(NFF_STARTS),
    params:
        trigger=lambda w: NFF_TRIGGER("sample_coco5k"),
        args=lambda w: NFF_ARGS("sample_coco5k"),
    resources:
        **rule_resources("nitrofusion", "sample_coco5k"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/sample_coco5k_{start}.log",
    benchmark:
        "benchmarks/nitrofusion/sample_coco5k_{start}.tsv"
    shell:
        "python -m steps.nitrofusion.sdxl.sample {params.args} sample.start={wildcards.start} io.sdxl={input.sdxl} "
        "io.start={input.start} io.tuned={input.tuned} io.prompts={input.prompts} io.out={output} > {log} 2>&1"


rule nitrofusion_eval_fid_clip:
    input:
        code("steps.nitrofusion.sdxl.evaluate"),
        samples=expand(f"{NFF_D}/samples_{{start}}", start=NFF_STARTS),
        prompts=f"{NFF_D}/prompts_coco.parquet",
        coco=f"{NFF_D}/coco",
        inception=f"{NFF_D}/inception",
        clip=f"{NFF_D}/clip",
    output:
        fid=f"{NFF_R}/fid.json",
    params:
        trigger=lambda w: NFF_TRIGGER("eval_fid_clip"),
        args=lambda w: NFF_ARGS("eval_fid_clip"),
        samples=lambda w, input: os.path.dirname(input.samples[0]),
        results=lambda w, output: os.path.dirname(output.fid),
    resources:
        **rule_resources("nitrofusion", "eval_fid_clip"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/nitrofusion/eval_fid_clip.log",
    benchmark:
        "benchmarks/nitrofusion/eval_fid_clip.tsv"
    shell:
        "python -m steps.nitrofusion.sdxl.evaluate {params.args} io.samples={params.samples} io.prompts={input.prompts} "
        "io.coco={input.coco} io.inception={input.inception} io.clip={input.clip} io.results={params.results} > {log} 2>&1"
