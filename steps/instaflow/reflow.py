"""Phase `reflow`: the 2-rectified flow (InstaFlow §3.2, text-conditioned reflow). Draw noises
and captions, map them through the 1-RF's ODE to get coupled pairs (z, ODE[v1](z | c)), then
fine-tune the 1-RF on those pairs with the rectified-flow loss. This straightens trajectories
and refines the noise-to-image coupling.

    python -m steps.instaflow.reflow scale=mini seed=0 io.teacher=models/instaflow/rf1_s0.pt \
        io.digits=data/instaflow/digits.npz io.captions=data/instaflow/caption_emb.npz \
        io.out=models/instaflow/rf2_s0.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.instaflow import pairs
from steps.instaflow.common import CaptionedDigits, load_flow, train_flow


def main(cfg: DictConfig) -> dict:
    teacher_path, digits_path, emb_path, out = need_io(cfg, "teacher", "digits", "captions", "out")
    seed = int(cfg.seed)
    rt = runtime.start(cfg, seed)
    data = CaptionedDigits(digits_path, emb_path)
    model = load_flow(teacher_path, "1-RF checkpoint")
    coupled = pairs.generate(model, data, cfg, seed, str(teacher_path))
    model.train()
    log.info(f"reflow seed {seed}: init {teacher_path}, {len(coupled['z'])} pairs, on {rt.description}")
    p_drop, batch = float(cfg.reflow.caption_dropout), int(cfg.reflow.batch)

    def batch_fn(step, g):
        idx = torch.randint(len(coupled["z"]), (batch,), generator=g)
        drop = torch.rand(batch, generator=g) < p_drop
        return coupled["z"][idx], coupled["x1"][idx], data.cond(coupled["caption_id"][idx], drop)

    steps = train_flow(cfg, cfg.reflow, model, out, seed, batch_fn, "reflow", rt)
    return {"steps": steps}


if __name__ == "__main__":
    run(main, "instaflow", "reflow")
