"""Phase `gen_train`: a text-conditioned rectified flow (steps.nn.rectified_flow, InstaFlow's
loss) with the CharCrossDiT velocity, trained on one arm's data: `short` (the short-text subset,
the distribution of older text-image datasets) or `atlas` (TextAtlas-mini's dense levels).
Same model, same steps for both arms; the EMA weights are saved.

    python -m steps.textatlas5m.gen_train scale=mini gen.arm=atlas io.train=data/textatlas5m/train.npz \
        io.out=models/textatlas5m/gen_atlas.pt
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import checkpoint, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_npz
from steps.core.progress import log
from steps.nn import rectified_flow as rf
from steps.nn.char_cross_dit import CharCrossDiT, encode_prompts
from steps.nn.optim import AdamW
from steps.textatlas5m.synth import ALPHABET

CHARSET = {c: i + 1 for i, c in enumerate(ALPHABET + " ")}


def build(cfg: DictConfig) -> CharCrossDiT:
    g = cfg.gen
    return CharCrossDiT(int(cfg.data.height), int(cfg.data.width), len(CHARSET), int(g.patch), int(g.dim),
                        int(g.depth), int(g.heads), int(g.max_chars), 2, int(g.text_layers))


def to_x(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)


def to_images(x: torch.Tensor) -> np.ndarray:
    return ((x.squeeze(1).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def main(cfg: DictConfig) -> dict:
    train_path, out = need_io(cfg, "train", "out")
    arm = str(cfg.gen.arm)
    if arm not in cfg.gen.arms:
        raise ConfigError(f"gen_train needs gen.arm=<{'|'.join(cfg.gen.arms)}>, got {arm!r}")
    t0 = time.monotonic()
    seed = int(cfg.data.seed)
    rt = runtime.start(cfg, seed)
    d = load_npz(train_path, "TextAtlas-mini training set")
    keep = np.isin(d["domain"], list(cfg.gen.arm_domains[arm]))
    x = to_x(d["images"][keep])
    c = encode_prompts(d["lines"][keep].tolist(), CHARSET, int(cfg.gen.max_chars))
    model = build(cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    # torch.optim.AdamW's arithmetic without its first step's torch._dynamo import (steps.nn.optim)
    opt = AdamW(model.parameters(), lr=float(cfg.gen.lr), weight_decay=0.0)
    steps, bs = int(cfg.gen.steps), int(cfg.gen.batch)
    log.info(f"arm {arm}: {len(x)} training images ({', '.join(cfg.gen.arm_domains[arm])}), "
             f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {steps} steps, {rt.description}")
    loop = checkpoint.TrainLoop(cfg, out, steps, f"gen_{arm}", model=model, ema=ema, optimizer=opt)
    for step in loop:
        g = seeding.step_generator(seed, f"gen_{arm}", step)
        idx = torch.randint(len(x), (bs,), generator=g)
        x1, cb = x[idx], c[idx].clone()
        drop = torch.rand(bs, generator=g) < float(cfg.gen.caption_dropout)   # null prompt for CFG
        cb[drop] = 0
        x0 = torch.randn(x1.shape, generator=g)
        t = torch.rand(bs, generator=g)
        loss = rf.rf_loss(model, x0, x1, cb, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        rf.ema_update(ema, model, rf.ema_decay(float(cfg.gen.ema), step))
        loop.log(loss=loss.item())
    record = loop.record()
    checkpoint.save(out, cfg, steps, model=ema, meta={"arm": arm, "n_train": len(x), "train": record})
    loop.finish()
    log.info(f"arm {arm} trained in {time.monotonic() - t0:.0f} s")
    return {"arm": arm}


def load(path, cfg: DictConfig) -> tuple[CharCrossDiT, dict]:
    payload = checkpoint.load(path, "generator checkpoint")
    m = build(cfg)
    m.load_state_dict(payload["state"]["model"])
    return m.eval().requires_grad_(False), payload["state"]["meta"]


if __name__ == "__main__":
    run(main, "textatlas5m", "gen_train")
