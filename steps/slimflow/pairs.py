"""Phase `pairs`: the large teacher's coupled pairs (z0, x1 = ODE[teacher](z0 | c)) that every
small student learns from (SlimFlow §3.1: "a pre-trained teacher 1-flow generates pairs").

* smoke, mini: the teacher is InstaFlow's 1-rectified flow (models/instaflow/rf1_s<teacher.seed>.pt),
  mapped by steps.instaflow.pairs with the noises and captions InstaFlow's own reflow uses.
* full: the teacher is a diffusers-format velocity U-Net the user supplies (io.teacher, a
  folder), unconditional; `pairs.n` noises of the data's shape, Euler with `pairs.ode_steps`.

    python -m steps.slimflow.pairs scale=mini io.teacher=models/instaflow/rf1_s0.pt \
        io.digits=data/instaflow/digits.npz io.captions=data/instaflow/caption_emb.npz \
        io.out=data/slimflow/pairs.npz
"""

from __future__ import annotations

import time

import torch
from omegaconf import DictConfig

from steps.core import runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import save_npz
from steps.core.progress import Progress, log
from steps.nn import rectified_flow as rf
from steps.nn.velocity import n_params
from steps.slimflow.images import load_data


@torch.no_grad()
def unconditional(teacher, shape, cfg: DictConfig, seed: int, dev) -> dict[str, torch.Tensor]:
    """{z, x1, caption_id}: `pairs.n` pairs of an unconditional teacher, in `pairs.batch` batches."""
    p = cfg.pairs
    n, batch = int(p.n), int(p.batch)
    z = torch.randn(n, *shape, generator=seeding.step_generator(seed, "pairs"))
    x1 = torch.empty_like(z)
    bar = Progress(n, "pairs", cfg.progress.every_s)
    for i in range(0, n, batch):
        zb = z[i:i + batch].to(dev)
        x1[i:i + batch] = rf.euler(teacher, zb, torch.zeros(len(zb), 0, device=dev), int(p.ode_steps)).cpu()
        bar.update(len(zb))
    bar.close()
    return {"z": z, "x1": x1, "caption_id": torch.zeros(n, dtype=torch.long)}


def main(cfg: DictConfig) -> dict:
    teacher_path, out = need_io(cfg, "teacher", "out")
    t0 = time.monotonic()
    seed = int(cfg.teacher.seed)
    rt = runtime.start(cfg, seed)
    data = load_data(cfg)
    if "images" in cfg.io:
        from steps.nn.diffusers_unet_velocity import VelocityUNet

        teacher = VelocityUNet.from_pretrained(teacher_path).to(rt.device).eval()
        coupled = unconditional(teacher, data.shape, cfg, seed, rt.device)
    else:
        from steps.instaflow import pairs as if_pairs
        from steps.instaflow.common import load_flow

        teacher = load_flow(teacher_path, "teacher (1-RF) checkpoint")
        coupled = if_pairs.generate(teacher, data, cfg, seed, str(teacher_path))
    digest = save_npz(out, z=coupled["z"].numpy(), x1=coupled["x1"].numpy(),
                      caption_id=coupled["caption_id"].numpy(), teacher_params=n_params(teacher))
    log.info(f"{len(coupled['z'])} teacher pairs ({n_params(teacher)} params) in {time.monotonic() - t0:.1f} s → {out}")
    return {"n": len(coupled["z"]), "sha256": digest}


if __name__ == "__main__":
    run(main, "slimflow", "pairs")
