"""Phase `reflow` (full scale): the 2-rectified flow (InstaFlow §3.2, text-conditioned reflow).
SD 1.5's UNet is fine-tuned as a velocity field v(x, t | c) on SD's own coupled pairs
(z, x1 = ODE[SD](z | c)) with the rectified-flow loss E‖(x1 − z) − v(t·x1 + (1 − t)·z, t | c)‖²
(Eq. 6; steps.nn.rectified_flow.rf_loss), t ~ U(0, 1). Captions are dropped to the empty
prompt with probability reflow.caption_dropout so classifier-free guidance keeps working.
Recipe (model card, verified): batch 64 × 70k iterations, then batch 1024 × 25k (reflow.stages).

    python -m steps.instaflow.sd.reflow scale=full io.sd=data/instaflow/sd15 \
        io.prompts=data/instaflow/prompts_train.parquet io.pairs=data/instaflow/pairs_sd \
        io.out=models/instaflow/rf2.pt
    # several GPUs: the rule launches it (steps.core.distributed.launch_command), e.g.
    # python -m torch.distributed.run --standalone --nnodes=1 --nproc-per-node=8 ... -m steps.instaflow.sd.reflow ...
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.instaflow.sd import data, models, train
from steps.instaflow.sd.pairs import shard_path
from steps.nn import rectified_flow as rf


def conditions(text: models.TextEncoder, prompts: list[str], drop: torch.Tensor) -> torch.Tensor:
    """Prompt embeddings, the empty prompt's where `drop` is true (caption dropout for CFG)."""
    c = text(prompts)
    return torch.where(drop.to(c.device).view(-1, 1, 1), text.null.expand_as(c), c)


def reflow_loss(cfg: DictConfig, store: data.PairStore, text: models.TextEncoder, prompts: data.Prompts,
                dev) -> train.LossFn:
    """The loss of one micro-batch for train.fit: `micro` pairs drawn from `store`, t ~ U(0, 1),
    captions dropped with probability reflow.caption_dropout, rectified-flow loss (Eq. 6)."""
    pairs_seed, p_drop = int(cfg.pairs.seed), float(cfg.reflow.caption_dropout)

    def loss_fn(model, stage, micro, g):
        z, x1, index = store.batch(pairs_seed, micro, g, dev)
        t = torch.rand(micro, generator=g).to(dev)
        drop = torch.rand(micro, generator=g) < p_drop
        return rf.rf_loss(models.velocity(model), z, x1, conditions(text, prompts(index), drop), t)

    return loss_fn


def main(cfg: DictConfig) -> dict:
    sd_dir, prompts_path, pairs_dir, out = need_io(cfg, "sd", "prompts", "pairs", "out")
    rt = runtime.start(cfg, int(cfg.seed))  # joins the launcher's process group (steps.core.distributed)
    dist, dev = rt.dist, rt.device
    sd = models.load(sd_dir, dev)
    unet = sd.unet.to(dev)  # init = SD 1.5 (model card: "initialized from the pre-trained SD 1.5 weights")
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, dev)
    prompts = data.Prompts(prompts_path)
    shards = [shard_path(pairs_dir, i) for i in range(int(cfg.pairs.shards))]
    store = data.PairStore(shards, dist.rank, dist.world)
    log.info(f"reflow: {len(store)} pairs on rank {dist.rank}/{dist.world}, {rt.description}")
    loop = train.fit(cfg, cfg.reflow, unet, out, "reflow", reflow_loss(cfg, store, text, prompts, dev), dist, dev)
    if dist.main:
        models.save_unet(out, cfg, unet, loop.total, init="sd15", train=loop.record())
    loop.finish()
    return {"steps": loop.total}


if __name__ == "__main__":
    run(main, "instaflow", "reflow")
