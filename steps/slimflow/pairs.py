"""Phase `pairs`: the large teacher's coupled pairs (z0, x1 = ODE[teacher](z0 | c)) that every
small student learns from (SlimFlow §3.1: "a pre-trained teacher 1-flow generates pairs").
At mini the teacher is InstaFlow's 1-rectified flow (models/instaflow/rf1_s<teacher.seed>.pt),
mapped by steps.instaflow.pairs with the noises and captions InstaFlow's own reflow uses.

    python -m steps.slimflow.pairs scale=mini io.teacher=models/instaflow/rf1_s0.pt \
        io.digits=data/instaflow/digits.npz io.captions=data/instaflow/caption_emb.npz \
        io.out=data/slimflow/pairs.npz
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.io import save_npz
from steps.core.progress import log
from steps.instaflow import pairs as if_pairs
from steps.instaflow.common import CaptionedDigits, load_flow
from steps.nn.velocity import n_params


def main(cfg: DictConfig) -> dict:
    teacher_path, digits_path, emb_path, out = need_io(cfg, "teacher", "digits", "captions", "out")
    t0 = time.monotonic()
    runtime.start(cfg, int(cfg.teacher.seed))
    data = CaptionedDigits(digits_path, emb_path)
    teacher = load_flow(teacher_path, "teacher (1-RF) checkpoint")
    coupled = if_pairs.generate(teacher, data, cfg, int(cfg.teacher.seed), str(teacher_path))
    digest = save_npz(out, z=coupled["z"].numpy(), x1=coupled["x1"].numpy(),
                      caption_id=coupled["caption_id"].numpy(), teacher_params=n_params(teacher))
    log.info(f"{len(coupled['z'])} teacher pairs ({n_params(teacher)} params) in {time.monotonic() - t0:.1f} s → {out}")
    return {"n": len(coupled["z"]), "sha256": digest}


if __name__ == "__main__":
    run(main, "slimflow", "pairs")
