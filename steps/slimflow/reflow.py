"""Phase `reflow`: a small 2-rectified flow from the large teacher's pairs, one arm per job
(`reflow.arm`), every arm with the same student, steps, batch, optimiser and EMA:

* `anneal`  — Annealing Reflow (§3.2): random init; on each teacher pair the noise is perturbed
  z0' = sqrt(1 − β_k²)·z0 + β_k·ε, β_k = 1 − min(1, k/K): flow matching with independent coupling
  on the teacher's outputs at first, pure reflow on the teacher's coupling after K steps. The
  student never sees a small 1-flow.
* `scratch` — reflow on the teacher's pairs from random init (β ≡ 0).
* `standard` — the usual recipe paid for within the same budget: a small 1-flow trained on the
  real digits for `standard_1rf_steps`, then reflow on the teacher's pairs for the rest; the
  EMA at the switch is kept as the snapshot `rf1_small` (the small 1-RF).
* `independent` — β ≡ 1 throughout (sanity: plain flow matching on the teacher's outputs; the
  coupling is what makes a one-step generator).

    python -m steps.slimflow.reflow scale=mini seed=0 reflow.arm=anneal io.pairs=data/slimflow/pairs.npz \
        io.digits=data/instaflow/digits.npz io.captions=data/instaflow/caption_emb.npz \
        io.out=models/slimflow/2rf_small_anneal_s0.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.nn import rectified_flow as rf
from steps.nn.velocity import n_params
from steps.slimflow import mechanism
from steps.slimflow.common import REFLOW_ARMS, Pairs, new_student, train
from steps.slimflow.images import load_data


def beta_of(arm: str, section: DictConfig):
    """β_k as a function of the step for an arm (the `standard` arm's 1-flow phase has no β)."""
    if arm == "anneal":
        k, sched = int(section.warmup_K), str(section.schedule)
        return lambda step: mechanism.beta(step, k, sched)
    if arm == "independent":
        return lambda step: 1.0
    return lambda step: 0.0


def main(cfg: DictConfig) -> dict:
    pairs_path, out = need_io(cfg, "pairs", "out")
    sec = cfg.reflow
    arm, seed = str(sec.arm), int(cfg.seed)
    if arm not in REFLOW_ARMS:
        raise ConfigError(f"reflow.arm must be one of {', '.join(REFLOW_ARMS)}, got {arm!r}")
    total, k1 = int(sec.steps), int(sec.standard_1rf_steps)
    if arm == "standard" and not 0 < k1 < total:
        raise ConfigError(f"reflow.standard_1rf_steps must lie in (0, reflow.steps={total}), got {k1}")
    rt = runtime.start(cfg, seed)
    data = load_data(cfg)  # captioned digits (io.digits, io.captions) or images (io.images)
    pairs = Pairs(pairs_path)
    model = new_student(cfg, data)
    beta = beta_of(arm, sec)
    batch = int(sec.batch)
    log.info(f"reflow arm {arm} seed {seed}: student {n_params(model)} params, {len(pairs)} teacher pairs, "
             f"{total} steps, on {rt.description}")

    def batch_fn(step, g):
        if arm == "standard" and step < k1:  # the small 1-flow on real data, independent noise
            idx = torch.randint(len(data.x), (batch,), generator=g)
            x0, x1, cid = torch.randn(batch, *data.shape, generator=g), data.x[idx], data.caption_id[idx]
        else:
            idx = torch.randint(len(pairs), (batch,), generator=g)
            x0 = mechanism.perturb_noise(pairs.z[idx], beta(step), g)  # fresh ε every step
            x1, cid = pairs.x1[idx], pairs.caption_id[idx]
        return {"x0": x0, "x1": x1, "c": data.cond(cid), "t": torch.rand(batch, generator=g)}

    def loss_fn(net, b, step):
        return rf.rf_loss(net, b["x0"], b["x1"], b["c"], b["t"]), {}

    every = max(1, total // 100)
    trace = [[s, beta(s) if not (arm == "standard" and s < k1) else None] for s in range(0, total, every)]
    snaps = {"rf1_small": k1} if arm == "standard" else {}
    train(cfg, sec, model, out, seed, f"reflow_{arm}", rt, batch_fn, loss_fn, snaps,
          meta={"arm": arm, "beta_trace": trace, "pairs": len(pairs)}, stream="reflow")
    return {"arm": arm, "steps": total}


if __name__ == "__main__":
    run(main, "slimflow", "reflow")
