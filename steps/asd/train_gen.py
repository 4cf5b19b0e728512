"""Phase `train_gen`: the stage-1 generator, a rectified flow on the fully convolutional UNet,
class-conditional with class dropout. Two arms, the same steps, batch and learning rate:

* `square`: trained on the square bucket only (Stable Diffusion's square training crops);
* `arad`: Any Ratio Adaptability Diffusion (§3.1): every mini-batch is drawn from one aspect-ratio
  bucket, the bucket chosen in proportion to its number of images, so the model learns to
  compose one object on every canvas shape.

    python -m steps.asd.train_gen scale=mini train_gen.arm=arad io.buckets=data/asd/buckets.npz io.out=models/asd/gen_arad.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.asd import common, scenes
from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow.common import train_flow
from steps.nn.fully_conv_unet import n_params


def bucket_plan(arm: str, cfg: DictConfig) -> list[str]:
    """The buckets an arm trains on."""
    if arm == "square":
        return [scenes.bucket_name(*(int(v) for v in cfg.data.square))]
    if arm == "arad":
        return [scenes.bucket_name(int(h), int(w)) for h, w in cfg.data.buckets]
    raise ConfigError(f"unknown arm '{arm}'; valid: {', '.join(common.ARMS)}")


def main(cfg: DictConfig) -> dict:
    buckets_path, out = need_io(cfg, "buckets", "out")
    arm = str(cfg.train_gen.arm)
    names = bucket_plan(arm, cfg)
    seed = int(cfg.seed)
    rt = runtime.start(cfg, seed)
    data = common.Buckets(buckets_path).subset(names)
    sizes = torch.tensor([len(data.y[n]) for n in names], dtype=torch.float64)
    model = common.build(cfg.model, 10, 0)
    log.info(f"{arm}: FullyConvUNet {n_params(model)} params, buckets {', '.join(names)}, on {rt.description}")
    batch, p_drop = int(cfg.train_gen.batch), float(cfg.train_gen.caption_dropout)

    def batch_fn(step, g):
        b = names[int(torch.multinomial(sizes, 1, generator=g))]  # one bucket per mini-batch (ARAD)
        idx = torch.randint(len(data.y[b]), (batch,), generator=g)
        x1 = data.x[b][idx]
        drop = torch.rand(batch, generator=g) < p_drop
        return torch.randn(x1.shape, generator=g), x1, common.one_hot(data.y[b][idx], 10, drop)

    save = common.saver("model", 10, 0, arm=arm, buckets=names, seed=seed)
    steps = train_flow(cfg, cfg.train_gen, model, out, seed, batch_fn, f"train_gen_{arm}", rt, save=save)
    return {"steps": steps}


if __name__ == "__main__":
    run(main, "asd", "train_gen")
