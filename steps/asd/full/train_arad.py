"""Phase `train_arad` (full scale): Aspect-Ratio-Aware Diffusion (ASD §3.1). SD 2.1's UNet is
fine-tuned with SD's own denoising loss (ε or v target, as the scheduler config says) on
multi-aspect-ratio images: every image belongs to the ratio bucket nearest its own
(steps.asd.full.data), and every global batch is drawn from ONE bucket, its images resized and
centre-cropped to that bucket's H×W — the UNet sees every ratio at its native shape instead of
square crops. The bucket of step k is drawn (∝ bucket sizes) from (seed, k) alone, so all ranks
and all micro-batches of a step share it; each rank draws its images from its own shard of the
training pairs (rank r holds pairs r, r + N, ...). Text encoder and VAE frozen; captions dropped
to the empty prompt with probability train.caption_dropout (classifier-free guidance).

Training machinery is InstaFlow's (steps.instaflow.sd.train.fit: AdamW, accumulation, precision,
DDP over the launcher's processes, steps.core.checkpoint.TrainLoop resume after a kill).

    python -m steps.asd.full.train_arad scale=full io.sd=data/asd/sd21 io.laion=data/asd/laion_coco \
        io.celeba=data/asd/mm_celeba_hq io.out=models/asd/arad_unet.pt
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from steps.asd.full import data
from steps.core import runtime, seeding
from steps.core.checkpoint import Snapshots
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow.sd import models, train
from steps.instaflow.sd.reflow import conditions


def target(sched, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """SD's regression target: ε, or v = √ᾱ·ε − √(1 − ᾱ)·x0 for v-prediction models (SD 2.1 768-v)."""
    kind = sched.config.prediction_type
    if kind == "epsilon":
        return eps
    if kind == "v_prediction":
        return sched.get_velocity(x0, eps, t)
    raise ConfigError(f"prediction_type {kind!r} is not supported")


def main(cfg: DictConfig) -> dict:
    from diffusers import DDPMScheduler

    sd_dir, laion, out = need_io(cfg, "sd", "laion", "out")
    celeba = cfg.io.get("celeba")
    rt = runtime.start(cfg, int(cfg.seed))
    dist, dev = rt.dist, rt.device
    sd = models.load(sd_dir, dev)
    unet = sd.unet.to(dev)  # init = SD 2.1
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, dev)
    sched = DDPMScheduler.from_config(sd.scheduler_config)
    buckets = data.ratios(cfg)
    _, items = data.split(data.pairs(laion, celeba), int(cfg.full.generate.n_per_ratio))
    mine = items[dist.rank::dist.world]
    by_bucket: list[list] = [[] for _ in buckets]
    for p, cap in mine:
        by_bucket[data.bucket_of(data.image_size(p), buckets)].append((p, cap))
    # bucket weights from the global counts, so every rank draws the same bucket sequence
    counts = torch.tensor(dist.sum([len(b) for b in by_bucket]) if dist.world > 1 else [len(b) for b in by_bucket], dtype=torch.float)
    if not all(by_bucket[i] for i in range(len(buckets)) if counts[i] > 0):
        raise ConfigError("a ratio bucket has images on some ranks only: use fewer GPUs or more images")
    log.info(f"train_arad: {len(mine)} images on rank {dist.rank}/{dist.world}, buckets "
             f"{dict(zip([f'{h}x{w}' for h, w in buckets], counts.int().tolist(), strict=True))}, {rt.description}")
    clock = Snapshots(step=0)  # the step whose bucket loss_fn draws from; in the resume checkpoint
    p_drop, seed = float(cfg.full.train.caption_dropout), int(cfg.seed)
    used = Snapshots()

    def loss_fn(model, stage, micro, g):
        k = int(clock["step"])
        b = int(torch.multinomial(counts, 1, generator=seeding.step_generator(seed, "arad/bucket", k)))
        pool = by_bucket[b]
        pick = torch.randint(len(pool), (micro,), generator=g).tolist()
        imgs = torch.stack([data.load_image(pool[i][0], buckets[b]) for i in pick]).to(dev)
        with torch.no_grad():
            x0 = sd.vae.encode(imgs.to(sd.vae.dtype)).latent_dist.mean.float() * sd.vae.config.scaling_factor
        eps = torch.randn(x0.shape, generator=g).to(dev)
        t = torch.randint(sched.config.num_train_timesteps, (micro,), generator=g).to(dev)
        drop = torch.rand(micro, generator=g) < p_drop
        c = conditions(text, [pool[i][1] for i in pick], drop)
        pred = model(sched.add_noise(x0, eps, t), t, encoder_hidden_states=c).sample.float()
        used[f"{buckets[b][0]}x{buckets[b][1]}"] = used.get(f"{buckets[b][0]}x{buckets[b][1]}", 0) + 1
        return F.mse_loss(pred, target(sched, x0, eps, t))

    def after_step(step: int) -> None:
        clock["step"] = step + 1

    loop = train.fit(cfg, cfg.full.train, unet, out, "train_arad", loss_fn, dist, dev, after_step=after_step,
                     clock=clock, buckets_used=used)
    if dist.main:
        models.save_unet(out, cfg, unet, loop.total, init="sd21", ratios=[list(b) for b in buckets],
                         micro_batches_per_bucket=dict(used), train=loop.record())
    loop.finish()
    return {"steps": loop.total, "micro_batches_per_bucket": dict(used)}


if __name__ == "__main__":
    run(main, "asd", "train_arad")
