"""Phase `train`: one arm at one target group sparsity, one training run of `train.epochs`.

Arms (all share the data order, the SGD arithmetic — DHSPG's plain-SGD path — and the schedule):
* dense: no pruning (the reference);
* dhspg: OTOv2 — DHSPG over the ZIGs (partition at dhspg.partition_epoch, half-space projection
  from dhspg.hsp_epoch); NO fine-tuning afterwards;
* lasso: the multi-stage baseline — group-lasso penalty λ Σ_g ‖x_g‖ on every ZIG, then at
  epochs − lasso.finetune_epochs the groups with the smallest norms are zeroed (target share)
  and the rest fine-tuned with them held at zero (same total epochs);
* random: at random.prune_epoch a seeded random target share of the groups is zeroed and held
  at zero; training continues;
* lasso_matched, random_matched: the same baselines pruned to exactly the number of groups the
  DHSPG run at the same target removed (io.match: that run's checkpoint), so that they are
  compared with OTOv2 at the group sparsity it actually reached, not at the nominal target.

Full scale (io.net names the net; io.raw the fetched CIFAR-10) follows the official tutorials'
loop: random crop + flip, mixup for VGG16-BN, the LR ×0.1 every 75 epochs, plain SGD (DHSPG's
'sgd' variant has no momentum by default), the same recipe for every arm of a net.

    python -m steps.otov2.train scale=mini io.arm=dhspg io.sparsity=0.5 io.partition=models/otov2/zig_groups.json io.out=models/otov2/dhspg_s50.pt
    python -m steps.otov2.train scale=full io.net=resnet50 io.arm=dhspg io.sparsity=0.8 io.raw=data/otov2/cifar10 \
        io.partition=models/otov2/zig_groups.json io.out=models/otov2/resnet50_dhspg_s80.pt
    python -m steps.otov2.train scale=mini io.arm=lasso_matched io.sparsity=0.5 io.match=models/otov2/dhspg_s50.pt \
        io.partition=models/otov2/zig_groups.json io.out=models/otov2/lasso_matched_s50.pt
"""

from __future__ import annotations

import math
import time

from omegaconf import DictConfig

from steps.core import checkpoint, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log


def group_lasso(index, lam: float):
    """λ Σ_g ‖x_g‖ over the ZIGs, differentiable (index: zig.GroupIndex)."""
    import torch

    sq = torch.zeros(index.num_groups)
    for _, p, dim, gids in index.entries:
        other = [i for i in range(p.dim()) if i != dim]
        s = (p * p).sum(dim=other) if other else p * p
        m = gids >= 0
        sq = sq.to(s.device).index_add(0, gids[m].to(s.device), s[m])
    return lam * torch.sqrt(sq + 1e-12).sum()


def learning_rate(tr, step: int, total: int, per_epoch: int) -> float:
    """train.schedule: cosine per step, or step: lr·γ^⌊(epoch + 1)/step_epochs⌋ — the tutorials
    call StepLR.step() at the start of each epoch, so the first decay comes one epoch early."""
    if tr.schedule == "cosine":
        return 0.5 * float(tr.lr) * (1 + math.cos(math.pi * step / total))
    if tr.schedule == "step":
        return float(tr.lr) * float(tr.step_gamma) ** ((step // per_epoch + 1) // int(tr.step_epochs))
    raise ConfigError(f"train.schedule must be cosine or step, got {tr.schedule!r}")


def matched_groups(path, num_groups: int) -> tuple[int, str]:
    """(groups removed, run name) of the DHSPG reference checkpoint a matched arm is pruned to."""
    meta = checkpoint.load(path, "DHSPG reference run")["state"]["meta"]
    if meta.get("arm") != "dhspg":
        raise ConfigError(f"io.match={path} is a {meta.get('arm')!r} run; a matched arm needs a DHSPG run")
    return int(round(float(meta["group_sparsity"]) * num_groups)), str(path)


def main(cfg: DictConfig) -> dict:
    import torch
    import torch.nn.functional as F

    from steps.nn import augment, zig
    from steps.nn.dhspg import DHSPG
    from steps.otov2.common import (
        ALL_ARMS,
        MATCHED,
        accuracy,
        data,
        for_net,
        load_partition,
        model,
        run_name,
    )

    arm, sparsity, part_path, out = need_io(cfg, "arm", "sparsity", "partition", "out")
    if arm not in ALL_ARMS:
        raise ConfigError(f"io.arm must be one of {', '.join(ALL_ARMS)}, got {arm!r}")
    base = arm.removesuffix("_matched")  # the baseline a matched arm runs
    sparsity = float(sparsity)
    net_name = cfg.io.get("net") or None
    cfg = for_net(cfg, net_name)
    torch.set_num_threads(max(1, int(cfg.threads) or 1))
    dev = torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
    t0 = time.monotonic()
    tr = cfg.train
    seeding.seed_everything(int(tr.seed))
    x, y = data(cfg, "train")
    xt, yt = data(cfg, "test")
    x, y, xt, yt = x.to(dev), y.to(dev), xt.to(dev), yt.to(dev)
    net = model(cfg).to(dev)
    part = load_partition(part_path, net_name)
    per_epoch = math.ceil(len(x) / int(tr.batch))
    total = int(tr.epochs) * per_epoch
    big = 10 * total + 1  # "never"
    dh = cfg.dhspg
    is_dh = arm == "dhspg"
    opt = DHSPG(
        net, part, lr=float(tr.lr), momentum=float(tr.momentum), weight_decay=float(tr.weight_decay),
        target_sparsity=sparsity if is_dh else 0.0, tolerance=float(dh.tolerance), lmbda=float(dh.lmbda),
        lmbda_amplify=float(dh.lmbda_amplify), hat_lmbda_coeff=float(dh.hat_lmbda_coeff), epsilon=float(dh.epsilon),
        partition_step=round(float(dh.partition_epoch) * per_epoch) if is_dh else big,
        hsp_start_step=round(float(dh.hsp_epoch) * per_epoch) if is_dh else big,
        stop_at_target=bool(dh.stop_at_target),
    )
    n_prune = int(math.floor(sparsity * part.num_groups + 1e-9))
    matched_to = None
    if arm in MATCHED:  # the budget is what DHSPG reached, not the nominal target
        (ref,) = need_io(cfg, "match")
        n_prune, matched_to = matched_groups(ref, part.num_groups)
        log.info(f"{arm}: pruning {n_prune} of {part.num_groups} groups, as many as {ref} removed")
    prune_step = {"lasso": (int(tr.epochs) - int(cfg.lasso.finetune_epochs)) * per_epoch,
                  "random": round(float(cfg.random.prune_epoch) * per_epoch)}.get(base, big)
    lasso_lam = float(cfg.lasso.lmbda) if base == "lasso" else 0.0

    name = run_name(arm, sparsity, net_name)
    fill = (-torch.tensor(list(cfg.data.mean)) / torch.tensor(list(cfg.data.std))).tolist() if "mean" in cfg.data else None
    mix = float(tr.mixup_alpha)
    loop = checkpoint.TrainLoop(cfg, out, total, desc=f"otov2 {name}", model=net, optimizer=opt)
    net.train()
    for step in loop:
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(len(x), generator=seeding.step_generator(int(tr.seed), "batches", epoch)).to(dev)
        idx = perm[k * int(tr.batch):(k + 1) * int(tr.batch)]
        opt.lr = learning_rate(tr, step, total, per_epoch)
        if step == prune_step and not opt.pruned.any():
            if base == "lasso":  # threshold: the smallest-norm groups (ties by index)
                order = torch.argsort(opt.index.norms(), stable=True)[:n_prune]
            else:
                order = torch.randperm(part.num_groups, generator=seeding.step_generator(int(tr.seed), "random_groups"))[:n_prune]
            opt.pruned[order] = True
            opt.index.zero(opt.pruned)
        xb, yb = x[idx], y[idx]
        if tr.augment:  # random crop (pad 4, black) + flip, as the tutorials' transforms
            xb = augment.crop_flip(xb, seeding.step_generator(int(tr.seed), "augment", step), pad=4, fill=fill)
        if mix > 0:  # mixup (VGG16-BN tutorial): CE against the mixed one-hot targets
            xb, ya, yb2, lam = augment.mixup(xb, yb, mix, seeding.step_generator(int(tr.seed), "mixup", step))
            logits = net(xb)
            loss = lam * F.cross_entropy(logits, ya) + (1 - lam) * F.cross_entropy(logits, yb2)
        else:
            loss = F.cross_entropy(net(xb), yb)
        if lasso_lam and step < prune_step:
            loss = loss + group_lasso(opt.index, lasso_lam)
        loss.backward()
        opt.step()
        opt.zero_grad()
        loop.log(loss=float(loss.detach()), sparsity=opt.group_sparsity())
    acc = accuracy(net, xt, yt)
    gs = zig.group_sparsity(net, part)
    log.info(f"{name}: test accuracy {acc:.4f}, group sparsity {gs:.3f} (target {sparsity})")
    meta = {"arm": arm, "target_sparsity": n_prune / part.num_groups if matched_to else sparsity,
            "group_sparsity": gs, "groups_removed": int(round(gs * part.num_groups)), "matched_to": matched_to, "acc_full": acc,
            "optimizer": opt.stats(), "wall_time_s": time.monotonic() - t0,
            "train": loop.record(), "net": net_name, "arch": str(cfg.model.arch), "device": str(dev)}
    net.cpu()
    checkpoint.save(out, cfg, total, model=net, meta=meta)
    loop.finish()
    return meta


if __name__ == "__main__":
    run(main, "otov2", "train")
