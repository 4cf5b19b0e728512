"""Phase `gen_train`: a text-conditioned rectified flow (steps.nn.rectified_flow, InstaFlow's
loss) trained on one arm's data with one seed: `short` (the short-text subset, the distribution
of older text-image datasets) or `atlas` (TextAtlas-mini's dense levels). Same model, same
initial weights (drawn from the seed alone), same steps and batch for both arms; the EMA
weights are saved.

The velocity network is `gen.model`:
- `layout_unet` (steps.nn.char_layout_unet): a small conv UNet given each line's box with its
  characters spread evenly over it (where each character goes, not what it looks like);
- `cross_dit` (steps.nn.char_cross_dit): a patch transformer cross-attending to the character
  sequence (line and index in line, no pixel layout). At the mini budget it does not learn to
  use its prompt (docs/papers/textatlas5m.md, "Generators"); kept to reproduce that finding.

    python -m steps.textatlas5m.gen_train scale=mini gen.arm=atlas seed=0 \
        io.train=data/textatlas5m/train.npz io.out=models/textatlas5m/gen_atlas_s0.pt
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
from steps.nn.optim import AdamW
from steps.textatlas5m.synth import ALPHABET

CHARSET = {c: i + 1 for i, c in enumerate(ALPHABET + " ")}


def build(cfg: DictConfig) -> torch.nn.Module:
    """The velocity network `gen.model` names, with its section's sizes."""
    g = cfg.gen
    if g.model == "layout_unet":
        from steps.nn.char_layout_unet import CharLayoutUNet

        u = g.layout_unet
        return CharLayoutUNet(len(CHARSET), int(u.embed), int(u.c1), int(u.c2), int(u.emb),
                              tuple(int(v) for v in u.get("glyph", (0, 0, 0))))
    from steps.nn.char_cross_dit import CharCrossDiT

    d = g.cross_dit
    return CharCrossDiT(int(cfg.data.height), int(cfg.data.width), len(CHARSET), int(d.patch), int(d.dim),
                        int(d.depth), int(d.heads), int(d.max_chars), 2, int(d.text_layers))


def condition(cfg: DictConfig, lines: np.ndarray, slots: np.ndarray) -> torch.Tensor:
    """The prompts of images with these line texts (N, L) and line boxes (N, L, 4), in the form
    `gen.model` reads: a character-cell layout, or the character sequence with 2-D text
    positions. All zeros is the null prompt (classifier-free guidance)."""
    if cfg.gen.model == "layout_unet":
        from steps.nn.char_layout_unet import cell_layout

        return cell_layout(lines, slots, int(cfg.data.height), int(cfg.data.width), CHARSET)
    from steps.nn.char_cross_dit import encode_prompts

    return encode_prompts(lines.tolist(), CHARSET, int(cfg.gen.cross_dit.max_chars))


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
    seed = int(cfg.seed)
    rt = runtime.start(cfg, seed)        # the initial weights depend on the seed alone, not the arm
    d = load_npz(train_path, "TextAtlas-mini training set")
    keep = np.isin(d["domain"], list(cfg.gen.arm_domains[arm]))
    x = to_x(d["images"][keep])
    c = condition(cfg, d["lines"][keep], d["slots"][keep])
    model = build(cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    # torch.optim.AdamW's arithmetic without its first step's torch._dynamo import (steps.nn.optim)
    opt = AdamW(model.parameters(), lr=float(cfg.gen.lr), weight_decay=0.0)
    steps, bs = int(cfg.gen.steps), int(cfg.gen.batch)
    log.info(f"arm {arm}, seed {seed}: {len(x)} training images ({', '.join(cfg.gen.arm_domains[arm])}), "
             f"{cfg.gen.model} with {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
             f"{steps} steps of {bs}, {rt.description}")
    loop = checkpoint.TrainLoop(cfg, out, steps, f"gen_{arm}_s{seed}", model=model, ema=ema, optimizer=opt)
    for step in loop:
        # the same stream for both arms: the same noise, times and dropout, on each arm's own images
        g = seeding.step_generator(seed, "gen", step)
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
    checkpoint.save(out, cfg, steps, model=ema,
                    meta={"arm": arm, "seed": seed, "model": str(cfg.gen.model), "n_train": len(x), "train": record})
    loop.finish()
    log.info(f"arm {arm}, seed {seed} trained in {time.monotonic() - t0:.0f} s")
    return {"arm": arm, "seed": seed}


def load(path, cfg: DictConfig) -> tuple[torch.nn.Module, dict]:
    payload = checkpoint.load(path, "generator checkpoint")
    m = build(cfg)
    m.load_state_dict(payload["state"]["model"])
    return m.eval().requires_grad_(False), payload["state"]["meta"]


if __name__ == "__main__":
    run(main, "textatlas5m", "gen_train")
