# Any-Size-Diffusion at full scale (arXiv 2308.16582): SD 2.1 fine-tuned on multi-ratio
# LAION-COCO (ARAD), sampled per ratio, scored (FID, CLIP), then enlarged by StableSR with FSTD.
# Included instead of asd.smk when --config scale=full; parameters and GPU resources in
# params/asd/full.yaml. GPU rules: train_arad (8 GPUs, torchrun), generate, fid_clip, upscale_full.
#   fetch{sd21,stablesr,laion_coco,mm_celeba_hq,clip,inception} ─ train_arad ─ generate[sd21|arad] ─ fid_clip ─┬─ report
#                                                                          upscale_full[mode] ────┘
import json
import os


ASF_D, ASF_M, ASF_R = "data/asd", "models/asd", "results/asd"
ASF_ASSETS = list(CFG["asd"].full.assets)


rule asd:
    """Everything for Any-Size-Diffusion at full scale: its metrics and its report."""
    input:
        f"{ASF_R}/fid_clip.json",
        f"{ASF_R}/fstd_full.json",
        f"{ASF_R}/report.md",


rule asd_fetch:
    output:
        out=directory(f"{ASF_D}/{{asset}}"),
        lock=f"{ASF_D}/{{asset}}.lock.json",
    wildcard_constraints:
        asset="|".join(ASF_ASSETS),
    params:
        trigger=lambda w: json.dumps(CFG["asd"].full.assets[w.asset], sort_keys=True),
        args=step_args("asd", "fetch"),
        cache=f"{ASF_D}/downloads",
    threads: res("asd", "fetch", "threads", 1)
    resources:
        **rule_resources("asd", "fetch"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/fetch_{asset}.log",
    benchmark:
        "benchmarks/asd/fetch_{asset}.tsv"
    shell:
        "python -m steps.asd.full.fetch {params.args} threads={threads} io.cache={params.cache} "
        "io.{wildcards.asset}={output.out} > {log} 2>&1"


rule asd_train_arad:
    """GPU: ARAD, SD 2.1's UNet fine-tuned on one aspect-ratio bucket per batch (§3.1)."""
    input:
        code("steps.asd.full.train_arad"),
        sd=f"{ASF_D}/sd21",
        laion=f"{ASF_D}/laion_coco",
        celeba=f"{ASF_D}/mm_celeba_hq",
    output:
        f"{ASF_M}/arad_unet.pt",
    params:
        trigger=trigger("asd", "train_arad"),
        args=step_args("asd", "train_arad"),
    resources:
        **rule_resources("asd", "train_arad", launch=True),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/train_arad.log",
    benchmark:
        "benchmarks/asd/train_arad.tsv"
    shell:
        "{resources.launch} -m steps.asd.full.train_arad {params.args} io.sd={input.sd} io.laion={input.laion} "
        "io.celeba={input.celeba} io.out={output} > {log} 2>&1"


rule asd_generate:
    """GPU: sample every ratio bucket with SD 2.1 as released (sd21) or fine-tuned (arad)."""
    input:
        code("steps.asd.full.generate"),
        sd=f"{ASF_D}/sd21",
        laion=f"{ASF_D}/laion_coco",
        unet=lambda w: [f"{ASF_M}/arad_unet.pt"] if w.arm == "arad" else [],
    output:
        directory(f"{ASF_D}/generated_{{arm}}"),
    wildcard_constraints:
        arm="sd21|arad",
    params:
        trigger=trigger("asd", "generate"),
        args=step_args("asd", "generate"),
        unet=lambda w, input: f"io.unet={input.unet}" if input.unet else "",
    resources:
        **rule_resources("asd", "generate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/generate_{arm}.log",
    benchmark:
        "benchmarks/asd/generate_{arm}.tsv"
    shell:
        "python -m steps.asd.full.generate {params.args} io.sd={input.sd} io.laion={input.laion} {params.unet} "
        "io.out={output} > {log} 2>&1"


rule asd_fid_clip:
    """GPU: FID (Inception) and CLIP score per ratio, for both arms."""
    input:
        code("steps.asd.full.fid_clip"),
        laion=f"{ASF_D}/laion_coco",
        clip=f"{ASF_D}/clip",
        inception=f"{ASF_D}/inception",
        generated=expand(f"{ASF_D}/generated_{{arm}}", arm=["sd21", "arad"]),
    output:
        f"{ASF_R}/fid_clip.json",
    params:
        trigger=trigger("asd", "fid_clip"),
        args=step_args("asd", "fid_clip"),
        generated=lambda w, input: os.path.dirname(input.generated[0]),  # the folder holding generated_{sd21,arad}
    resources:
        **rule_resources("asd", "fid_clip"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/fid_clip.log",
    benchmark:
        "benchmarks/asd/fid_clip.tsv"
    shell:
        "python -m steps.asd.full.fid_clip {params.args} io.laion={input.laion} io.generated={params.generated} "
        "io.clip={input.clip} io.inception={input.inception} "
        "io.out={output} > {log} 2>&1"


rule asd_upscale_full:
    """GPU: StableSR on ARAD's outputs, tiled: non-overlap, overlap and FSTD (§3.2), with latency and memory."""
    input:
        code("steps.asd.full.upscale_full"),
        stablesr=f"{ASF_D}/stablesr",
        generated=f"{ASF_D}/generated_arad",
    output:
        f"{ASF_R}/fstd_full.json",
    params:
        trigger=trigger("asd", "upscale_full"),
        args=step_args("asd", "upscale_full"),
    resources:
        **rule_resources("asd", "upscale_full"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/asd/upscale_full.log",
    benchmark:
        "benchmarks/asd/upscale_full.tsv"
    shell:
        "python -m steps.asd.full.upscale_full {params.args} io.stablesr={input.stablesr} "
        "io.generated={input.generated} io.out={output} > {log} 2>&1"
