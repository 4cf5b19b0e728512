# InstaFlow's regime study (docs/papers/instaflow.md, "Regime study"): the miniature's own rules
# (instaflow.smk, `use rule ... with:`: the same steps and commands) run per cell of data setting
# × capacity, each cell with the scale's seeds; params/instaflow `regime:` gives each setting as
# a list of overrides, and params/instaflow/regime_claims.yaml the claims, written before the
# study's first run. Smoke and mini only; not part of `snakemake -c all` (≈ 30 min at mini):
#   snakemake -c2 instaflow_regime                       # results/instaflow_regime/report.md
#   digits/{data} ─┬─ fid_features/{data} ──────────────────────────────┐
#   captions ──────┴─ teacher/{data}/{cap} ─┬─ reflow ─ distill rf2 ─┬─ evaluate/{data}/{cap} ─ regime ─ report
#                                           └─ distill rf1 ──────────┘
# The captions are the miniature's own file (data/instaflow/caption_emb.npz): one table for all.
from steps.instaflow import regime as ifregime

RG = _guard(ifregime.Study.from_cfg, CFG["instaflow"].regime)
RG_D, RG_M, RG_R = "data/instaflow_regime", "models/instaflow_regime", "results/instaflow_regime"
RG_LOG, RG_BENCH = "logs/instaflow_regime", "benchmarks/instaflow_regime"


wildcard_constraints:
    data="|".join(RG.grid_data),
    cap="|".join(RG.grid_capacity),


# A study job's overrides for `phase`: the study's (common, then its data setting's and
# capacity's; the report's for the report), then the user's --config instaflow=..., which win.
# (Lambdas: `snakemake --lint` wants no function definitions beside rules.)
rg_overrides = lambda phase, w: _guard(
    pzconfig.split_overrides, "instaflow", SCALE,
    [*RG.overrides(w.get("data"), w.get("cap")), *(RG.report if phase == "report" else ()), *overrides("instaflow")],
    phase,
)[0]

# `trigger` and `args` of a study rule: those of the pipeline's rule, with the study's overrides.
rg_params = lambda phase: dict(
    trigger=lambda w: _guard(pzconfig.trigger, "instaflow", SCALE, rg_overrides(phase, w), phase),
    args=lambda w: " ".join(shlex.quote(a) for a in [f"scale={SCALE}", *rg_overrides(phase, w)]),
)


rule instaflow_regime:
    """The regime study at the chosen scale (smoke or mini): the gap map and its report."""
    input:
        f"{RG_R}/report.md",


use rule instaflow_digits as instaflow_regime_digits with:
    output:
        digits=f"{RG_D}/{{data}}/digits.npz",
        table=f"{RG_D}/{{data}}/captions.parquet",
    params:
        **rg_params("digits"),
    log:
        f"{RG_LOG}/{{data}}/digits.log",
    benchmark:
        f"{RG_BENCH}/{{data}}/digits.tsv"


use rule instaflow_fid_features as instaflow_regime_fid_features with:
    input:
        code("steps.instaflow.fid_features"),
        digits=f"{RG_D}/{{data}}/digits.npz",
    output:
        clf=f"{RG_M}/{{data}}/fid_clf.pt",
        metrics=f"{RG_R}/{{data}}/fid_features.json",
    params:
        **rg_params("fid_features"),
    log:
        f"{RG_LOG}/{{data}}/fid_features.log",
    benchmark:
        f"{RG_BENCH}/{{data}}/fid_features.tsv"


use rule instaflow_teacher as instaflow_regime_teacher with:
    input:
        code("steps.instaflow.teacher"),
        digits=f"{RG_D}/{{data}}/digits.npz",
        captions="data/instaflow/caption_emb.npz",
    output:
        f"{RG_M}/{{data}}/{{cap}}/rf1_s{{seed}}.pt",
    params:
        **rg_params("teacher"),
    log:
        f"{RG_LOG}/{{data}}/{{cap}}/teacher_s{{seed}}.log",
    benchmark:
        f"{RG_BENCH}/{{data}}/{{cap}}/teacher_s{{seed}}.tsv"


use rule instaflow_reflow as instaflow_regime_reflow with:
    input:
        code("steps.instaflow.reflow"),
        teacher=f"{RG_M}/{{data}}/{{cap}}/rf1_s{{seed}}.pt",
        digits=f"{RG_D}/{{data}}/digits.npz",
        captions="data/instaflow/caption_emb.npz",
    output:
        f"{RG_M}/{{data}}/{{cap}}/rf2_s{{seed}}.pt",
    params:
        **rg_params("reflow"),
    log:
        f"{RG_LOG}/{{data}}/{{cap}}/reflow_s{{seed}}.log",
    benchmark:
        f"{RG_BENCH}/{{data}}/{{cap}}/reflow_s{{seed}}.tsv"


use rule instaflow_distill as instaflow_regime_distill with:
    input:
        code("steps.instaflow.distill"),
        teacher=f"{RG_M}/{{data}}/{{cap}}/{{flow}}_s{{seed}}.pt",
        digits=f"{RG_D}/{{data}}/digits.npz",
        captions="data/instaflow/caption_emb.npz",
    output:
        f"{RG_M}/{{data}}/{{cap}}/distill_{{flow}}_s{{seed}}.pt",
    params:
        **rg_params("distill"),
    log:
        f"{RG_LOG}/{{data}}/{{cap}}/distill_{{flow}}_s{{seed}}.log",
    benchmark:
        f"{RG_BENCH}/{{data}}/{{cap}}/distill_{{flow}}_s{{seed}}.tsv"


use rule instaflow_evaluate as instaflow_regime_evaluate with:
    input:
        code("steps.instaflow.evaluate"),
        digits=f"{RG_D}/{{data}}/digits.npz",
        captions="data/instaflow/caption_emb.npz",
        table=f"{RG_D}/{{data}}/captions.parquet",
        clf=f"{RG_M}/{{data}}/fid_clf.pt",
        flows=lambda w: [f"{RG_M}/{w.data}/{w.cap}/{f}_s{s}.pt" for f in ("rf1", "rf2") for s in CFG["instaflow"].seeds],
        students=lambda w: [f"{RG_M}/{w.data}/{w.cap}/distill_{f}_s{s}.pt" for f in ("rf1", "rf2") for s in CFG["instaflow"].seeds],
    output:
        **{k: f"{RG_R}/{{data}}/{{cap}}/{k}.{'npz' if k == 'samples' else 'json'}"
           for k in ("fid", "straightness", "prompt_acc", "sampling_time", "samples")},
    params:
        **rg_params("evaluate"),
        models=lambda w: f"{RG_M}/{w.data}/{w.cap}",
        results=lambda w: f"{RG_R}/{w.data}/{w.cap}",
    log:
        f"{RG_LOG}/{{data}}/{{cap}}/evaluate.log",
    benchmark:
        f"{RG_BENCH}/{{data}}/{{cap}}/evaluate.tsv"


rule instaflow_regime_gather:
    """results/instaflow_regime/regime.json: every cell's gap, straightness and 50-step FIDs."""
    input:
        code("steps.instaflow.regime"),
        fid=[f"{RG_R}/{d}/fid_features.json" for d in RG.grid_data],
        cells=[f"{RG_R}/{d}/{c}/{m}.json" for d, c in RG.cells() for m in ("fid", "straightness")],
    output:
        f"{RG_R}/regime.json",
    params:
        **rg_params("regime"),
    resources:
        **rule_resources("instaflow", "regime"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        f"{RG_LOG}/regime.log",
    benchmark:
        f"{RG_BENCH}/regime.tsv"
    shell:
        f"python -m steps.instaflow.regime {{params.args}} io.results={RG_R} io.out={{output}} > {{log}} 2>&1"


rule instaflow_regime_report:
    """results/instaflow_regime/report.md: the study's claims (regime_claims.yaml), its figures."""
    input:
        code("steps.core.report", "steps.instaflow.regime_figures"),
        metrics=f"{RG_R}/regime.json",
        claims="params/instaflow/regime_claims.yaml",
    output:
        md=f"{RG_R}/report.md",
        summary=f"{RG_R}/report.json",
        dvc_metric=f"{RG_R}/summary.json",
    params:
        **rg_params("report"),
    resources:
        **rule_resources("instaflow", "report"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        f"{RG_LOG}/report.log",
    benchmark:
        f"{RG_BENCH}/report.tsv"
    shell:
        "python -m steps.core.report paper=instaflow {params.args} io.claims={input.claims} "
        f"io.results={RG_R} io.benchmarks={RG_BENCH} > {{log}} 2>&1"
