"""Phase `gen_teacher_reals` (full, GPU): one shard of NitroFusion's "real" samples — the
multi-step SDXL teacher's image latents for the training prompts (distillation setting: the
discriminator learns the teacher's distribution).

    python -m steps.nitrofusion.sdxl.gen_reals scale=full gen_reals.shard=0 io.sdxl=data/nitrofusion/sdxl \
        io.prompts=data/nitrofusion/prompts_train.parquet io.out=data/nitrofusion/reals/shard0000.npz

Sample i uses prompt i of the table and the noise of (prompts.seed, i) (steps.instaflow.sd.data),
so the shards are independent of batch and GPU. A shard stores x1 (float16 latents) and index —
the format of InstaFlow's pair shards, read back with steps.instaflow.sd.data.PairStore. A killed
shard resumes from <out>.resume.npz, written every ckpt.every_s seconds.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow.sd import data
from steps.instaflow.sd.pairs import write_shard
from steps.instaflow.sd.train import autocast
from steps.nitrofusion.sdxl import models, sampling


def main(cfg: DictConfig) -> dict:
    sdxl_dir, prompts_path, out = need_io(cfg, "sdxl", "prompts", "out")
    g = cfg.gen_reals
    seed = int(cfg.prompts.seed)
    rt = runtime.start(cfg, seed)
    dev = rt.device
    prompts = data.Prompts(prompts_path)
    n = int(g.n)
    if n > len(prompts):
        raise ConfigError(f"gen_reals.n = {g.n} but {prompts_path} has {len(prompts)} prompts")
    start, stop = data.shard_range(n, int(g.shards), int(g.shard))
    shape = data.latent_shape(int(g.resolution))
    sd = models.load(sdxl_dir, dev)
    text = models.TextXL(sd.tokenizers, sd.text_encoders, int(g.resolution), dev)

    log.info(f"shard {g.shard}/{g.shards}: teacher reals [{start}, {stop}), {g.steps} Euler steps, guidance "
             f"{g.guidance}, {g.resolution} px, on {rt.description}")

    def sample(idx: list[int]) -> torch.Tensor:
        z = data.noise(seed, idx, shape, "reals_noise").to(dev)
        with torch.no_grad(), autocast(dev):
            c = text(prompts(idx))
            return sampling.teacher(sd.unet, sd.scheduler_config, z, c, text.nulls(len(idx)), int(g.steps), float(g.guidance))

    write_shard(cfg, out, start, stop, shape, int(g.batch), sample, f"reals shard {g.shard}", "the teacher")
    return {"reals": stop - start}


if __name__ == "__main__":
    run(main, "nitrofusion", "gen_teacher_reals")
