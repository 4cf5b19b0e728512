"""NitroFusion at full scale: SDXL teacher and DMD2 / Hyper-SD one-step students (nitrofusion_full.smk).
fetch and prompts reuse InstaFlow's full-scale code; models (SDXL loading, tiny test model),
discriminator (the head pool on the frozen SDXL UNet), sampling, gen_reals, train, sample and
evaluate are this paper's own."""
