# TextAtlas5M (arXiv 2502.07870): a dataset of dense, long text in images and its benchmark.
# Miniature DAG (smoke, mini); the full-scale DAG is in textatlas5m_full.smk.
#   render ── ocr_train ── ocr_validate (OCR-mini checked on ground truth; difficulty) ──┐
#         └── gen_train[short|atlas × seed] ─ evaluate (TextAtlasEval-mini, OCR metrics) ─┴─ report
TA_D, TA_M, TA_R = "data/textatlas5m", "models/textatlas5m", "results/textatlas5m"


rule textatlas5m:
    """Everything for TextAtlas5M at the chosen scale: its metrics and its report."""
    input:
        f"{TA_R}/generation.json",
        f"{TA_R}/report.md",


rule textatlas5m_render:
    input:
        code("steps.textatlas5m.render"),
    output:
        train=f"{TA_D}/train.npz",
        eval=f"{TA_D}/eval.npz",
        lines=f"{TA_D}/ocr_lines.npz",
        stats=f"{TA_R}/dataset_stats.json",
    params:
        trigger=trigger("textatlas5m", "render"),
        args=step_args("textatlas5m", "render"),
    threads: res("textatlas5m", "render", "threads", 1)
    resources:
        **rule_resources("textatlas5m", "render"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/textatlas5m/render.log",
    benchmark:
        "benchmarks/textatlas5m/render.tsv"
    shell:
        "python -m steps.textatlas5m.render {params.args} threads={threads} io.train={output.train} "
        "io.eval={output.eval} io.lines={output.lines} io.stats={output.stats} > {log} 2>&1"


rule textatlas5m_ocr_train:
    input:
        code("steps.textatlas5m.ocr_train"),
        lines=f"{TA_D}/ocr_lines.npz",
    output:
        f"{TA_M}/ocr.pt",
    params:
        trigger=trigger("textatlas5m", "ocr_train"),
        args=step_args("textatlas5m", "ocr_train"),
    threads: res("textatlas5m", "ocr_train", "threads", 1)
    resources:
        **rule_resources("textatlas5m", "ocr_train"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/textatlas5m/ocr_train.log",
    benchmark:
        "benchmarks/textatlas5m/ocr_train.tsv"
    shell:
        "python -m steps.textatlas5m.ocr_train {params.args} threads={threads} io.lines={input.lines} "
        "io.out={output} > {log} 2>&1"


rule textatlas5m_ocr_validate:
    input:
        code("steps.textatlas5m.ocr_validate"),
        eval=f"{TA_D}/eval.npz",
        ocr=f"{TA_M}/ocr.pt",
    output:
        gt=f"{TA_R}/ocr_on_gt.json",
        difficulty=f"{TA_R}/difficulty.json",
    params:
        trigger=trigger("textatlas5m", "ocr_validate"),
        args=step_args("textatlas5m", "ocr_validate"),
    threads: res("textatlas5m", "ocr_validate", "threads", 1)
    resources:
        **rule_resources("textatlas5m", "ocr_validate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/textatlas5m/ocr_validate.log",
    benchmark:
        "benchmarks/textatlas5m/ocr_validate.tsv"
    shell:
        "python -m steps.textatlas5m.ocr_validate {params.args} threads={threads} io.eval={input.eval} "
        "io.ocr={input.ocr} io.gt={output.gt} io.difficulty={output.difficulty} > {log} 2>&1"


rule textatlas5m_gen_train:
    input:
        code("steps.textatlas5m.gen_train"),
        train=f"{TA_D}/train.npz",
    output:
        f"{TA_M}/gen_{{arm}}_s{{seed}}.pt",
    wildcard_constraints:
        arm="short|atlas",
        seed=r"\d+",
    params:
        trigger=trigger("textatlas5m", "gen_train"),
        args=step_args("textatlas5m", "gen_train"),
    threads: res("textatlas5m", "gen_train", "threads", 1)
    resources:
        **rule_resources("textatlas5m", "gen_train"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/textatlas5m/gen_train_{arm}_s{seed}.log",
    benchmark:
        "benchmarks/textatlas5m/gen_train_{arm}_s{seed}.tsv"
    shell:
        "python -m steps.textatlas5m.gen_train {params.args} gen.arm={wildcards.arm} seed={wildcards.seed} "
        "threads={threads} "
        "io.train={input.train} io.out={output} > {log} 2>&1"


rule textatlas5m_evaluate:
    input:
        code("steps.textatlas5m.evaluate"),
        eval=f"{TA_D}/eval.npz",
        ocr=f"{TA_M}/ocr.pt",
        gens=expand(f"{TA_M}/gen_{{arm}}_s{{seed}}.pt", arm=CFG["textatlas5m"].gen.arms,
                    seed=CFG["textatlas5m"].seeds),
        gt=f"{TA_R}/ocr_on_gt.json",
    output:
        out=f"{TA_R}/generation.json",
        samples=f"{TA_R}/samples.npz",
    params:
        trigger=trigger("textatlas5m", "evaluate"),
        args=step_args("textatlas5m", "evaluate"),
    threads: res("textatlas5m", "evaluate", "threads", 1)
    resources:
        **rule_resources("textatlas5m", "evaluate"),
    conda:
        "../envs/paperzoo.yaml"
    log:
        "logs/textatlas5m/evaluate.log",
    benchmark:
        "benchmarks/textatlas5m/evaluate.tsv"
    shell:
        "python -m steps.textatlas5m.evaluate {params.args} threads={threads} io.eval={input.eval} "
        f"io.ocr={{input.ocr}} io.models={TA_M} io.out={{output.out}} io.samples={{output.samples}} > {{log}} 2>&1"
