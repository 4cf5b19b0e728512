"""Phase `distill`: a small one-step student from a small 2-flow, one arm per job
(`distill.arm`); both arms start from the same small 2-flow (`distill.init`, the annealed one:
the paper's pipeline), with the same pairs, steps, batch, optimiser and EMA:

* `naive` — InstaFlow's one-step distillation: D(z0 + v_s(z0, 0 | c), x1) on the teacher pairs.
* `fgd`   — Flow-Guided Distillation (§3.3): the same plus, for fresh noises z and t' ~ U[0.2, 0.8],
  D(v_s(z, 0), x_t' + (1 − t')·v_2(x_t', t') − z), x_t' = z + t'·v_s(z, 0) (stop-grad), where v_2
  is the frozen small 2-flow the student started from (steps.slimflow.mechanism.fgd_loss).

D is L2 here (LPIPS at full scale).

    python -m steps.slimflow.distill scale=mini seed=0 distill.arm=fgd io.init=models/slimflow/2rf_small_anneal_s0.pt \
        io.pairs=data/slimflow/pairs.npz io.digits=data/instaflow/digits.npz \
        io.captions=data/instaflow/caption_emb.npz io.out=models/slimflow/student_fgd_s0.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow.common import CaptionedDigits, frozen_copy
from steps.slimflow import mechanism
from steps.slimflow.common import DISTILL_ARMS, Pairs, load_model, train


def main(cfg: DictConfig) -> dict:
    init_path, pairs_path, digits_path, emb_path, out = need_io(cfg, "init", "pairs", "digits", "captions", "out")
    sec = cfg.distill
    arm, seed = str(sec.arm), int(cfg.seed)
    if arm not in DISTILL_ARMS:
        raise ConfigError(f"distill.arm must be one of {', '.join(DISTILL_ARMS)}, got {arm!r}")
    lo, hi = (float(x) for x in sec.guidance_t)
    if not 0.0 <= lo <= hi <= 1.0:
        raise ConfigError(f"distill.guidance_t must be [lo, hi] within [0, 1], got {list(sec.guidance_t)}")
    rt = runtime.start(cfg, seed)
    data = CaptionedDigits(digits_path, emb_path)
    pairs = Pairs(pairs_path)
    student = load_model(init_path, "small 2-flow checkpoint")
    flow2 = frozen_copy(student).to(rt.device) if arm == "fgd" else None  # the guide: the small 2-flow
    weight, batch = float(sec.guidance_weight), int(sec.batch)
    log.info(f"distill arm {arm} seed {seed}: student = copy of {init_path}, {int(sec.steps)} steps, on {rt.description}")

    def batch_fn(step, g):
        idx = torch.randint(len(pairs), (batch,), generator=g)
        return {"z0": pairs.z[idx], "x1": pairs.x1[idx], "c": data.cond(pairs.caption_id[idx]),
                "z": torch.randn(batch, data.x_dim, generator=g), "t": mechanism.guidance_times(batch, lo, hi, g)}

    def loss_fn(net, b, step):
        return mechanism.fgd_loss(net, flow2, b["z0"], b["x1"], b["c"], b["z"], b["t"], weight)

    train(cfg, sec, student, out, seed, f"distill_{arm}", rt, batch_fn, loss_fn,
          meta={"arm": arm, "init": str(init_path)}, stream="distill")
    return {"arm": arm, "steps": int(sec.steps)}


if __name__ == "__main__":
    run(main, "slimflow", "distill")
