"""Phase `adversarial`: NitroFusion's dynamic adversarial fine-tuning (§3) of one-step students,
for one training seed: every start (distilled, weak) × every arm (single head, pool without
refresh, NitroFusion, NitroFusion without local heads), the same steps, batches and noises.

Per step: one discriminator update then one generator update (hinge loss, §3). The batch's rows
are split evenly over the pool's noise-level groups; each group's chosen heads judge its rows.
"Reals" are the multi-step teacher's samples (distillation setting); the held-out teacher
samples measure the discriminator's overfitting (accuracy on training reals − on held-out reals).
Resumable twice over: within a run (checkpoint.TrainLoop) and across runs (each finished run is
kept in a part file until the seed's checkpoint is written).

    python -m steps.nitrofusion.adversarial scale=mini seed=0 io.teacher=models/instaflow/rf1_s0.pt \
        io.student=models/instaflow/distill_rf2_s0.pt io.digits=data/instaflow/digits.npz \
        io.captions=data/instaflow/caption_emb.npz io.out=models/nitrofusion/adversarial_s0.pt
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import checkpoint, runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow.common import CaptionedDigits, frozen_copy, load_flow
from steps.nitrofusion.common import load_start, step_gen, teacher_reals
from steps.nitrofusion.discriminator import HeadPool, PoolSpec, hinge_d, hinge_g
from steps.nn import rectified_flow as rf
from steps.nn.optim import Adam


def check_arms(cfg: DictConfig) -> list[str]:
    arms = [str(a) for a in cfg.adversarial.arms]
    bad = [a for a in arms if a not in cfg.arms]
    if bad:
        raise ConfigError(f"adversarial.arms names unknown arm(s) {', '.join(bad)}; defined: {', '.join(cfg.arms)}")
    return arms


@torch.no_grad()
def d_accuracy(pool: HeadPool, backbone, data: CaptionedDigits, x, cid, seed: int) -> float:
    """Share of (head, sample) pairs the discriminator calls real, over every head of the pool,
    each at noise levels of its own group (fixed noises: train and held-out sets are scored alike)."""
    g = step_gen(seed, "d_accuracy")
    c = data.cond(cid)
    hits = []
    n_groups = len(pool.spec.ranges)
    for grp in range(n_groups):
        groups = torch.full((len(x),), grp, dtype=torch.long)
        t = pool.draw_t(groups, g)
        eps = torch.randn(x.shape, generator=g)
        ids = [[i for i in range(len(pool.heads)) if pool.group_of(i) == k] if k == grp else [] for k in range(n_groups)]
        hits += [(s > 0).float().mean() for s in pool.scores(backbone, x, c, data.null, t, eps, groups, ids)]
    return float(torch.stack(hits).mean())


def train_run(cfg, seed, start: str, arm: str, gen, backbone, data, reals, heldout, loop_out) -> dict:
    """One adversarial fine-tuning run; returns the generator's weights and the run's diagnostics."""
    a, disc = cfg.adversarial, cfg.discriminator
    spec = PoolSpec.from_cfg(disc, cfg.arms[arm])
    feat_dim, n_taps = backbone.net[0].out_features, sum(isinstance(m, torch.nn.SiLU) for m in backbone.net)
    pool = HeadPool(spec, feat_dim, data.c_dim, n_taps, step_gen(seed, f"pool/{start}/{arm}"))
    gen.train()
    opt_g = Adam(gen.parameters(), lr=float(a.lr_g), betas=tuple(a.betas))
    opt_d = Adam(pool.parameters(), lr=float(a.lr_d), betas=tuple(a.betas))
    trace = checkpoint.Snapshots(gap=[], refresh=[])
    n_train, batch, gap_every, n_gap = len(reals[0]), int(a.batch), int(a.gap_every), int(a.gap_n)
    n_groups = len(spec.ranges)
    groups = torch.arange(batch) % n_groups
    desc = f"adversarial {start}/{arm} s{seed}"
    loop = checkpoint.TrainLoop(cfg, loop_out, int(a.steps), desc, gen=gen, pool=pool, opt_g=opt_g, opt_d=opt_d, trace=trace)
    loop.describe(batch=batch, heads=len(pool.heads), per_step=spec.per_step * n_groups)

    def gap_point(step: int) -> None:
        acc_tr = d_accuracy(pool, backbone, data, reals[0][:n_gap], reals[1][:n_gap], seed)
        acc_ho = d_accuracy(pool, backbone, data, heldout[0][:n_gap], heldout[1][:n_gap], seed)
        trace["gap"] = [*trace["gap"], [step, acc_tr, acc_ho]]

    for step in loop:
        g = step_gen(seed, f"adv/{start}/{arm}", step)
        idx = torch.randint(n_train, (batch,), generator=g)
        xr, c = reals[0][idx], data.cond(reals[1][idx])
        z = torch.randn(batch, data.x_dim, generator=g)
        t = pool.draw_t(groups, g)
        eps_r, eps_f = torch.randn(xr.shape, generator=g), torch.randn(xr.shape, generator=g)
        chosen = pool.sample(g)
        # Discriminator update: the chosen heads on real (teacher) and fake (student) samples.
        with torch.no_grad():
            xf = rf.one_step(gen, z, c)
        s = pool.scores(backbone, torch.cat([xr, xf]), torch.cat([c, c]), data.null, torch.cat([t, t]),
                        torch.cat([eps_r, eps_f]), torch.cat([groups, groups]), chosen)
        loss_d = hinge_d([v[: len(v) // 2] for v in s], [v[len(v) // 2:] for v in s])
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # Generator update through the frozen backbone and the same heads.
        xf = rf.one_step(gen, z, c)
        loss_g = hinge_g(pool.scores(backbone, xf, c, data.null, t, eps_f, groups, chosen))
        if float(a.l2_weight) > 0:  # the spec's ablation: + λ·‖G(z) − teacher pair‖² is not run at mini
            raise ConfigError("adversarial.l2_weight > 0 needs teacher pairs; not implemented in the miniature")
        for p in opt_d.params:
            p.grad = None
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in opt_d.params:
            p.grad = None
        if spec.refresh_every and (step + 1) % spec.refresh_every == 0:
            before = pool.checksums()
            ids = pool.refresh(step_gen(seed, f"refresh/{start}/{arm}", step), opt_d)
            after = pool.checksums()
            changed = [i for i, (b, q) in enumerate(zip(before, after, strict=True)) if b != q]
            trace["refresh"] = [*trace["refresh"], [step + 1, len(ids), int(changed == ids)]]
        if gap_every and ((step + 1) % gap_every == 0 or step + 1 == int(a.steps)):
            gap_point(step + 1)
        loop.log(loss=float(loss_g.detach()), loss_d=float(loss_d.detach()))
    if not trace["gap"]:
        gap_point(int(a.steps))
    record = loop.record()
    loop.finish()
    refresh = trace["refresh"]
    return {
        "gen": {k: v.detach().clone() for k, v in gen.state_dict().items()},
        "gap_trace": trace["gap"],
        "refresh_events": len(refresh),
        "refresh_ok": int(all(r[2] for r in refresh)),
        "d_steps": int(a.steps), "g_steps": int(a.steps),
        "train": record,
    }


def main(cfg: DictConfig) -> dict:
    teacher_path, student_path, digits_path, emb_path, out = need_io(cfg, "teacher", "student", "digits", "captions", "out")
    seed = int(cfg.seed)
    out = Path(out)
    arms = check_arms(cfg)
    rt = runtime.start(cfg, seed)
    data = CaptionedDigits(digits_path, emb_path)
    teacher = load_flow(teacher_path, "teacher checkpoint")
    backbone = frozen_copy(teacher)  # NitroFusion's frozen teacher backbone (never trained)
    r = cfg.reals
    reals = teacher_reals(teacher, data, int(r.n_train), seed, "reals_train", int(r.ode_steps), float(r.guidance))
    heldout = teacher_reals(teacher, data, int(r.n_heldout), seed, "reals_heldout", int(r.ode_steps), float(r.guidance))
    log.info(f"adversarial seed {seed}: {len(reals[0])} training and {len(heldout[0])} held-out teacher reals "
             f"({r.ode_steps} Euler steps); starts {list(cfg.adversarial.starts)}, arms {arms}; on {rt.description}")
    runs = {}
    for start in cfg.adversarial.starts:
        for arm in arms:
            key = f"{start}/{arm}"
            part = out.with_name(f"{out.stem}.part_{start}_{arm}.pt")
            if part.exists():
                runs[key] = checkpoint.load(part, "finished run")["state"]["run"]
                continue
            gen = load_start(str(start), teacher_path, student_path, str(cfg.adversarial.student_budget))
            res = train_run(cfg, seed, str(start), arm, gen, backbone, data, reals, heldout,
                            out.with_name(f"{out.stem}_{start}_{arm}.pt"))
            checkpoint.save(part, cfg, int(cfg.adversarial.steps), run=res)
            runs[key] = res
            gap = res["gap_trace"][-1]
            log.info(f"{key}: D accuracy on training reals {gap[1]:.3f}, held-out {gap[2]:.3f}; "
                     f"{res['refresh_events']} refreshes (checked: {bool(res['refresh_ok'])})")
    meta = {"x_dim": data.x_dim, "c_dim": data.c_dim, "seed": seed, "arms": arms, "starts": list(cfg.adversarial.starts),
            "train": next(iter(runs.values()))["train"] if runs else {}}
    checkpoint.save(out, cfg, int(cfg.adversarial.steps), runs=runs, meta=meta)
    for start in cfg.adversarial.starts:
        for arm in arms:
            out.with_name(f"{out.stem}.part_{start}_{arm}.pt").unlink(missing_ok=True)
    return {"runs": len(runs)}


def load_generators(path, teacher_path) -> dict[str, torch.nn.Module]:
    """{'<start>/<arm>': fine-tuned one-step generator} from an adversarial checkpoint (the
    architecture is the teacher's: every start is a VelocityMLP of the same shape)."""
    payload = checkpoint.load(path, "adversarial checkpoint")
    out = {}
    for key, res in payload["state"]["runs"].items():
        m = load_flow(teacher_path, "teacher checkpoint")
        m.load_state_dict(res["gen"])
        out[key] = m.eval()
    return out


def diagnostics(path) -> dict[str, dict]:
    """{'<start>/<arm>': run diagnostics without the weights}."""
    payload = checkpoint.load(path, "adversarial checkpoint")
    return {k: {kk: vv for kk, vv in v.items() if kk != "gen"} for k, v in payload["state"]["runs"].items()}


if __name__ == "__main__":
    run(main, "nitrofusion", "adversarial")
