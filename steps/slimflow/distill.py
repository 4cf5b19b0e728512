"""Phase `distill`: a small one-step student from a small 2-flow, one arm per job
(`distill.arm`); both arms start from the same small 2-flow (`distill.init`, the annealed one:
the paper's pipeline), with the same pairs, steps, batch, optimiser and EMA:

* `naive` — InstaFlow's one-step distillation: D(z0 + v_s(z0, 0 | c), x1) on the teacher pairs.
* `fgd`   — Flow-Guided Distillation (§3.3): the same plus, for fresh noises z and t' ~ U[0.2, 0.8],
  D(v_s(z, 0), x_t' + (1 − t')·v_2(x_t', t') − z), x_t' = z + t'·v_s(z, 0) (stop-grad), where v_2
  is the frozen small 2-flow the student started from (steps.slimflow.mechanism.fgd_loss).

D is L2 at smoke and mini, LPIPS at full scale (`distill.loss`).

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
from steps.instaflow.common import frozen_copy
from steps.slimflow import mechanism
from steps.slimflow.common import DISTILL_ARMS, Pairs, load_model, train
from steps.slimflow.images import load_data


def distance(cfg: DictConfig, dev):
    """D of both loss terms: None (L2) or LPIPS (AlexNet v0.1, steps.nn.lpips) on images resized
    to `distill.lpips_resize` (the official wrapper: bilinear to 64 × 64), its weights from io.lpips."""
    loss = str(cfg.distill.loss)
    if loss == "l2":
        return None
    if loss != "lpips":
        raise ConfigError(f"distill.loss must be l2 or lpips, got {loss!r}")
    from pathlib import Path

    import torch.nn.functional as F

    from steps.nn import lpips

    folder = Path(need_io(cfg, "lpips")[0])
    files = cfg.distill.lpips_files
    net = lpips.build(folder / str(files.trunk), folder / str(files.heads)).to(dev)
    size = cfg.distill.get("lpips_resize")

    def d(a, b):
        if size:
            a = F.interpolate(a, size=(int(size), int(size)), mode="bilinear", align_corners=True)
            b = F.interpolate(b, size=(int(size), int(size)), mode="bilinear", align_corners=True)
        return net(a, b).mean()

    return d


def main(cfg: DictConfig) -> dict:
    init_path, pairs_path, out = need_io(cfg, "init", "pairs", "out")
    sec = cfg.distill
    arm, seed = str(sec.arm), int(cfg.seed)
    if arm not in DISTILL_ARMS:
        raise ConfigError(f"distill.arm must be one of {', '.join(DISTILL_ARMS)}, got {arm!r}")
    lo, hi = (float(x) for x in sec.guidance_t)
    if not 0.0 <= lo <= hi <= 1.0:
        raise ConfigError(f"distill.guidance_t must be [lo, hi] within [0, 1], got {list(sec.guidance_t)}")
    rt = runtime.start(cfg, seed)
    data = load_data(cfg)
    pairs = Pairs(pairs_path)
    student = load_model(init_path, "small 2-flow checkpoint")
    flow2 = frozen_copy(student).to(rt.device) if arm == "fgd" else None  # the guide: the small 2-flow
    weight, batch = float(sec.guidance_weight), int(sec.batch)
    dist_fn = distance(cfg, rt.device)
    log.info(f"distill arm {arm} seed {seed}: student = copy of {init_path}, {int(sec.steps)} steps, on {rt.description}")

    def batch_fn(step, g):
        idx = torch.randint(len(pairs), (batch,), generator=g)
        return {"z0": pairs.z[idx], "x1": pairs.x1[idx], "c": data.cond(pairs.caption_id[idx]),
                "z": torch.randn(batch, *data.shape, generator=g), "t": mechanism.guidance_times(batch, lo, hi, g)}

    def loss_fn(net, b, step):
        return mechanism.fgd_loss(net, flow2, b["z0"], b["x1"], b["c"], b["z"], b["t"], weight, dist_fn)

    train(cfg, sec, student, out, seed, f"distill_{arm}", rt, batch_fn, loss_fn,
          meta={"arm": arm, "init": str(init_path)}, stream="distill")
    return {"arm": arm, "steps": int(sec.steps)}


if __name__ == "__main__":
    run(main, "slimflow", "distill")
