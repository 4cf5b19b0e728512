"""Phase `teacher`: the 1-rectified flow, trained from independent (noise, image) pairs with
caption dropout. In the paper this role is played by Stable Diffusion 1.5 itself (§3.2: the
pre-trained model is the 1-flow); here it is trained on the captioned digits.

    python -m steps.instaflow.teacher scale=mini seed=0 io.digits=data/instaflow/digits.npz \
        io.captions=data/instaflow/caption_emb.npz io.out=models/instaflow/rf1_s0.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.instaflow.common import CaptionedDigits, new_flow, train_flow
from steps.nn.velocity import n_params


def main(cfg: DictConfig) -> dict:
    seed = int(cfg.seed)
    digits_path, emb_path, out = need_io(cfg, "digits", "captions", "out")
    rt = runtime.start(cfg, seed)
    data = CaptionedDigits(digits_path, emb_path)
    model = new_flow(cfg, data.x_dim, data.c_dim)
    log.info(f"1-RF teacher seed {seed}: VelocityMLP {n_params(model)} params on {rt.description}")
    p_drop = float(cfg.teacher.caption_dropout)
    batch = int(cfg.teacher.batch)

    def batch_fn(step, g):
        idx = torch.randint(len(data.x), (batch,), generator=g)
        drop = torch.rand(batch, generator=g) < p_drop
        return torch.randn(batch, data.x_dim, generator=g), data.x[idx], data.cond(data.caption_id[idx], drop)

    steps = train_flow(cfg, cfg.teacher, model, out, seed, batch_fn, "teacher", rt)
    return {"steps": steps}


if __name__ == "__main__":
    run(main, "instaflow", "teacher")
