"""InstaFlow at full scale: Stable Diffusion 1.5 on LAION prompts, evaluated on MS COCO 2017.
Phases, one module each: fetch → prompts → pairs (SD, then 2-RF) → reflow (2-RF) →
distill (arms rf2 = InstaFlow, sd = SD+Distill) → evaluate. The DAG is
workflow/rules/instaflow_full.smk; params/instaflow/full.yaml holds the paper's setting."""
