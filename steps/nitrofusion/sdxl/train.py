"""Phase `train_nitro` (full, GPU): NitroFusion's dynamic adversarial fine-tuning (§3) of one
one-step SDXL start (train.start: dmd2 → NitroSD-Realism, hypersd → NitroSD-Vibrant).

Per step, as in the miniature (steps.nitrofusion.adversarial): draw `per_step` heads of every
noise-level group of the pool (steps.nitrofusion.sdxl.discriminator.SDXLPool on the frozen
SDXL-base UNet), one discriminator update with the hinge loss on teacher "reals"
(gen_teacher_reals) against the student's one-step samples x̂0 = G(z | c) — noise level 999,
the UNet fed the start's shifted timestep (sample.shifted_timestep, as at inference) — then one
generator update through the frozen teacher and the same heads; every
`discriminator.refresh.every` steps a share of the pool is re-initialised (and its optimiser
state dropped). The batch's rows are split evenly over the groups; each row is re-noised to a
level of its group, s = round((1 − t)·999).

Data parallel over the processes the rule's launcher started (torchrun on 8 GPUs;
steps.core.distributed): the student is wrapped in DDP, the chosen heads' gradients are
averaged by an all-reduce; heads, levels and refreshes are drawn from (seed, step) alone so every
rank holds the same pool, the rows from (seed, rank, step). Rank r reads reals shards r, r + N, ...
Resumable (steps.core.checkpoint.TrainLoop: student, pool, both optimisers, refresh log).

    python -m steps.nitrofusion.sdxl.train scale=full train.start=dmd2 io.sdxl=data/nitrofusion/sdxl \
        io.start=data/nitrofusion/dmd2 io.reals=data/nitrofusion/reals \
        io.prompts=data/nitrofusion/prompts_train.parquet io.out=models/nitrofusion/nitro_dmd2.pt
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import checkpoint, distributed, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.progress import log
from steps.instaflow.sd import data
from steps.nitrofusion.discriminator import PoolSpec, hinge_d, hinge_g
from steps.nitrofusion.sdxl import models, sampling
from steps.nitrofusion.sdxl.discriminator import SDXLPool


def pool_spec(cfg: DictConfig) -> PoolSpec:
    d, t = cfg.discriminator, cfg.train
    return PoolSpec(tuple((float(a), float(b)) for a, b in d.groups), int(t.heads_per_group), int(t.per_step),
                    bool(t.get("local", True)), float(d.refresh.share), int(d.refresh.every), int(d.hidden))


def average_grads(dist: distributed.Dist, params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of `params` over the ranks (every rank passes the same list)."""
    if dist.world == 1 or not params:
        return
    import torch.distributed as td

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.comm("discriminator gradient all-reduce", lambda: td.all_reduce(flat))
    flat /= dist.world
    k = 0
    for p in params:
        p.grad = flat[k:k + p.numel()].view_as(p).clone()
        k += p.numel()


def present(chosen: list[list[int]], groups: torch.Tensor) -> list[list[int]]:
    """The chosen heads of the groups that have rows in this micro-batch."""
    return [ids if bool((groups == g).any()) else [] for g, ids in enumerate(chosen)]


def main(cfg: DictConfig) -> dict:
    sdxl_dir, start_dir, reals_dir, prompts_path, out = need_io(cfg, "sdxl", "start", "reals", "prompts", "out")
    tr = cfg.train
    seed = int(cfg.seeds[0]) if cfg.get("seeds") else 0
    rt = runtime.start(cfg, seed)
    dist, dev = rt.dist, rt.device
    sd = models.load(sdxl_dir, dev)  # the teacher UNet: frozen discriminator backbone
    gen = models.load_start(start_dir, sdxl_dir).to(dev)
    if tr.get("gradient_checkpointing") and hasattr(gen, "enable_gradient_checkpointing"):
        gen.enable_gradient_checkpointing()
    gen.train()
    text = models.TextXL(sd.tokenizers, sd.text_encoders, int(cfg.gen_reals.resolution), dev)
    prompts = data.Prompts(prompts_path)
    shards = sorted(Path(reals_dir).glob("shard*.npz"))
    if not shards:
        raise ArtifactError(f"no teacher reals (shard*.npz) under {reals_dir}; run nitrofusion_gen_teacher_reals")
    store = data.PairStore(shards, dist.rank, dist.world)
    ac = models.alphas_cumprod(sd.scheduler_config).to(dev)
    spec = pool_spec(cfg)
    c_dim = int(sd.text_encoders[1].config.projection_dim)
    pool = SDXLPool(spec, sd.unet, c_dim, seeding.step_generator(seed, f"pool/{tr.start}")).to(dev)
    opt_g = torch.optim.AdamW(gen.parameters(), lr=float(tr.lr_g), betas=tuple(tr.betas), weight_decay=0.0)
    opt_d = torch.optim.AdamW(pool.parameters(), lr=float(tr.lr_d), betas=tuple(tr.betas), weight_decay=0.0)
    plan = distributed.batch_plan(int(tr.batch), int(tr.micro_batch), dist.world)
    prec = distributed.precision(tr.get("precision"), dev)
    model_g = dist.wrap(gen)
    n_groups, shifted = len(spec.ranges), int(cfg.sample.shifted_timestep[str(tr.start)])
    first = sampling.schedule(sd.scheduler_config, 1)  # one step: noise level 999, UNet fed shift(999)
    trace = checkpoint.Snapshots(refresh=[])
    loop = checkpoint.TrainLoop(cfg, out, int(tr.steps), f"train_nitro {tr.start}", dist, gen=gen, pool=pool,
                                opt_g=opt_g, opt_d=opt_d, trace=trace)
    loop.describe(precision=prec, heads=len(pool.heads), per_step=spec.per_step * n_groups, **plan.record())
    log.info(f"train_nitro {tr.start}: {len(store)} teacher reals on rank {dist.rank}/{dist.world}, pool of "
             f"{len(pool.heads)} heads ({n_groups} groups), global batch {tr.batch} = {dist.world} × "
             f"{plan.accumulation} × {plan.micro}, {prec}, on {rt.description}")
    shape = tuple(store.x1.shape[1:])

    for step in loop:
        shared = seeding.step_generator(seed, f"train/{tr.start}/shared", step)
        g = seeding.step_generator(seed, f"train/{tr.start}/rank{dist.rank}", step)
        chosen = pool.sample(shared)
        micros = []
        for _ in plan.micro_slices(dist.rank):
            pick = torch.randint(len(store), (plan.micro,), generator=g)
            groups = torch.randint(n_groups, (1,), generator=g) + torch.arange(plan.micro)
            groups = groups % n_groups
            micros.append({"xr": store.x1[pick].float().to(dev), "c": text(prompts(store.index[pick])),
                           "z": torch.randn(plan.micro, *shape, generator=g).to(dev), "groups": groups,
                           "t": pool.draw_t(groups, g), "eps_r": torch.randn(plan.micro, *shape, generator=g).to(dev),
                           "eps_f": torch.randn(plan.micro, *shape, generator=g).to(dev)})
        null2, null1 = text.nulls(2 * plan.micro), text.nulls(plan.micro)
        # Discriminator update: the chosen heads on teacher reals and the student's samples.
        opt_d.zero_grad(set_to_none=True)
        loss_d = 0.0
        for m in micros:
            with distributed.autocast(prec, dev):
                with torch.no_grad():
                    xf = sampling.refine(gen, ac, m["z"], m["c"], first, shifted, g)
                ids = present(chosen, m["groups"])
                s = pool.scores(ac, torch.cat([m["xr"], xf]), models.Cond.cat([m["c"], m["c"]]), null2,
                                torch.cat([m["t"], m["t"]]), torch.cat([m["eps_r"], m["eps_f"]]),
                                torch.cat([m["groups"], m["groups"]]), ids)
                loss = hinge_d([v[: len(v) // 2] for v in s], [v[len(v) // 2:] for v in s]).float() / len(micros)
            loss.backward()
            loss_d += float(loss.detach())
        average_grads(dist, [p for ids in chosen for i in ids for p in pool.heads[i].parameters()])
        opt_d.step()
        # Generator update through the frozen teacher and the same heads.
        opt_g.zero_grad(set_to_none=True)

        def g_loss(i, sl, m=micros, chosen=chosen, g=g, null=null1):
            x = sampling.refine(model_g, ac, m[i]["z"], m[i]["c"], first, shifted, g)
            return hinge_g(pool.scores(ac, x, m[i]["c"], null, m[i]["t"], m[i]["eps_f"], m[i]["groups"],
                                       present(chosen, m[i]["groups"])))

        loss_g = distributed.backward(dist, model_g, plan, prec, dev, g_loss)
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)  # the generator's pass left gradients on the heads
        if spec.refresh_every and (step + 1) % spec.refresh_every == 0:
            ids = pool.refresh(seeding.step_generator(seed, f"refresh/{tr.start}", step), opt_d)
            trace["refresh"] = [*trace["refresh"], [step + 1, ids]]
        loop.log(loss=loss_g, loss_d=loss_d)
    if dist.main:
        models.save_unet(out, cfg, gen, loop.total, start=str(tr.start), refresh=trace["refresh"], train=loop.record())
    loop.finish()
    return {"steps": loop.total, "refreshes": len(trace["refresh"])}


if __name__ == "__main__":
    run(main, "nitrofusion", "train_nitro")
