"""Phase `distill`: one-step distillation (InstaFlow §3.3). The student starts as a copy of its
teacher flow and learns z ↦ z + v_s(z, 0 | c) ≈ ODE[v_teacher](z | c) on the teacher's pairs
with an L2 loss; an EMA of its weights is what gets evaluated. Run for teacher=rf2 this is
InstaFlow; for teacher=rf1 it is the paper's "SD+Distill" baseline (distilling the 1-flow
directly). Both arms get the same steps, learning rate, EMA and noises.

The teacher's pairs are generated first, from the same noises and captions for both arms
(steps.instaflow.pairs). Budgets are snapshots of one run: with a constant learning rate the
snapshot at 1000 steps is exactly what a 1000-step run produces.

    python -m steps.instaflow.distill scale=mini seed=0 io.teacher=models/instaflow/rf2_s0.pt \
        io.digits=data/instaflow/digits.npz io.captions=data/instaflow/caption_emb.npz \
        io.out=models/instaflow/distill_rf2_s0.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import checkpoint, distributed, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow import pairs
from steps.instaflow.common import CaptionedDigits, frozen_copy, load_flow
from steps.nn import rectified_flow as rf
from steps.nn.optim import Adam


def main(cfg: DictConfig) -> dict:
    teacher_path, digits_path, emb_path, out = need_io(cfg, "teacher", "digits", "captions", "out")
    seed = int(cfg.seed)
    rt = runtime.start(cfg, seed)
    budgets = {str(k): int(v) for k, v in cfg.distill.budgets.items()}
    if not budgets or min(budgets.values()) < 1:
        raise ConfigError("distill.budgets must name at least one positive step count")
    total = max(budgets.values())
    data = CaptionedDigits(digits_path, emb_path)
    student = load_flow(teacher_path, "teacher checkpoint")
    coupled = pairs.generate(student, data, cfg, seed, str(teacher_path))
    dist, dev = rt.dist, rt.device
    student.train().to(dev)
    ema = frozen_copy(student)
    wrapped = dist.wrap(student)
    opt = Adam(student.parameters(), lr=float(cfg.distill.lr))
    snaps = checkpoint.Snapshots()
    decay, warmup = float(cfg.distill.ema), bool(cfg.distill.ema_warmup)
    prec = distributed.precision(cfg.distill.get("precision"), dev)
    plan = distributed.batch_plan(int(cfg.distill.batch), cfg.distill.get("micro_batch"), dist.world)
    log.info(f"distill seed {seed}: student = copy of {teacher_path}, budgets {budgets}, on {rt.description}")
    loop = checkpoint.TrainLoop(cfg, out, total, "distill", dist, model=student, optimizer=opt, ema=ema, snapshots=snaps)
    loop.describe(precision=prec, **plan.record())
    for step in loop:
        g = seeding.step_generator(seed, "distill", step)
        idx = torch.randint(len(coupled["z"]), (plan.global_batch,), generator=g)  # the global batch

        def micro_loss(i, sl, idx=idx):
            rows = idx[sl]
            return rf.distill_loss(wrapped, coupled["z"][rows].to(dev), data.cond(coupled["caption_id"][rows]).to(dev),
                                   coupled["x1"][rows].to(dev))

        opt.zero_grad(set_to_none=True)
        loss = distributed.backward(dist, wrapped, plan, prec, dev, micro_loss)
        opt.step()
        rf.ema_update(ema, student, rf.ema_decay(decay, step, warmup))
        loop.log(loss=loss)
        for name, b in budgets.items():
            if step + 1 == b:
                snaps[name] = {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}
    if dist.main:
        meta = {"x_dim": student.x_dim, "c_dim": student.c_dim, "model": OmegaConf.to_container(cfg.model),
                "budgets": budgets, "seed": seed, "train": loop.record()}
        checkpoint.save(out, cfg, total, snapshots=snaps, meta=meta)
    loop.finish()
    return {"steps": total}


def load_students(path) -> dict[str, torch.nn.Module]:
    """{budget name: EMA student} from a distill checkpoint."""
    from steps.nn import velocity

    payload = checkpoint.load(path, "student checkpoint")
    meta = payload["state"]["meta"]
    out = {}
    for name, state in payload["state"]["snapshots"].items():
        m = velocity.build(OmegaConf.create(meta["model"]), meta["x_dim"], meta["c_dim"])
        m.load_state_dict(state)
        out[name] = m.eval()
    return out


if __name__ == "__main__":
    run(main, "instaflow", "distill")
