"""Phase `train`: one run (an arm at one target group sparsity) trained once, with pruning
inside training and no fine-tuning stage: dense, HESSO (hybrid or magnitude-only saliency, P
periods), HESSO-CRIC, or the DHSPG baseline. Every run sees the same minibatches in the same
order (batches depend on the seed and step only) and the same SGD + cosine schedule.

    python -m steps.hesso.train scale=mini io.run=hesso_s70 io.data=data/hesso/images.npz \
        io.partition=models/hesso/zig_groups.json io.out=models/hesso/hesso_s70.pt
    python -m steps.hesso.train scale=mini io.run=hesso_matched_s70 io.match=models/hesso/dhspg_s70.pt \
        io.data=data/hesso/images.npz io.partition=models/hesso/zig_groups.json io.out=models/hesso/hesso_matched_s70.pt
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import checkpoint, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_npz
from steps.core.progress import log
from steps.hesso import net
from steps.hesso.groups import family_of, group_norms
from steps.nn.augment import crop_flip

METHODS = ("dense", "hesso", "cric", "dhspg")


def run_spec(cfg: DictConfig, name: str) -> dict:
    """The run's settings: runs.<name> over the method's defaults."""
    if name not in cfg.runs:
        raise ConfigError(f"unknown run '{name}'; runs at this scale: {', '.join(cfg.runs)}")
    spec = OmegaConf.to_container(cfg.runs[name], resolve=True)
    if spec.get("method") not in METHODS:
        raise ConfigError(f"runs.{name}.method must be one of {', '.join(METHODS)}, got {spec.get('method')!r}")
    return spec


class Batches:
    """Minibatch i of epoch e: a permutation seeded by (seed, epoch), the same for every arm."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int, augment: bool = False):
        self.x, self.y, self.batch, self.seed, self.augment = x, y, batch, seed, augment
        self.per_epoch = math.ceil(len(y) / batch)
        self._perm = (None, None)

    def __call__(self, step: int, stream: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(step, self.per_epoch)
        if self._perm[0] != (stream, epoch):
            g = seeding.step_generator(self.seed, stream, epoch)
            self._perm = ((stream, epoch), torch.randperm(len(self.y), generator=g))
        idx = self._perm[1][i * self.batch:(i + 1) * self.batch].to(self.x.device)
        xb = self.x[idx]
        if self.augment and stream == "batch":
            xb = crop_flip(xb, seeding.step_generator(self.seed, "augment", step))
        return xb, self.y[idx]


def cosine_lr(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * step / total))


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, batches: Batches, n: int) -> None:
    """Fresh BatchNorm statistics of the final weights (cumulative average over n batches):
    statistics accumulated while groups decayed are stale (the spec's prototype finding)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(n):
        model(batches(i, "bn_recal")[0])
    for m in bns:
        m.momentum = 0.1


def make_optimizer(spec: dict, cfg: DictConfig, model, part, families, steps_per_epoch: int):
    """(optimizer, HESSO projection or None). HESSO and CRIC wrap plain SGD; DHSPG (the OTOv2
    baseline, steps.nn.dhspg) is an optimizer of its own; dense is plain SGD."""
    t, method = cfg.train, spec["method"]
    if method == "dhspg":
        from steps.nn.dhspg import DHSPG

        dh = cfg.dhspg
        opt = DHSPG(model, part, lr=float(t.lr), momentum=float(t.momentum), weight_decay=float(t.weight_decay),
                    target_sparsity=float(spec["target"]), lmbda=float(spec.get("lambda", dh["lambda"])),
                    epsilon=float(dh.epsilon), partition_step=int(dh.start_epoch * steps_per_epoch),
                    hsp_start_step=int(dh.hsp_epoch * steps_per_epoch))
        return opt, None
    from steps.hesso.sgd import SGD

    opt = SGD(model.parameters(), lr=float(t.lr), momentum=float(t.momentum), weight_decay=float(t.weight_decay))
    if method == "dense":
        return opt, None
    from steps.hesso.hesso import Hesso

    h = cfg.hesso if method == "hesso" else cfg.cric
    weights = spec.get("weights") or OmegaConf.to_container(cfg.hesso.weights)
    pruner = Hesso(families, float(spec["target"]), start=int(h.start_epoch * steps_per_epoch),
                   pruning_steps=int(h.pruning_epochs * steps_per_epoch), periods=int(spec.get("periods", h.periods)),
                   weights=weights, weight_decay=float(t.weight_decay), min_keep=int(cfg.hesso.min_keep))
    return opt, pruner


def set_lr(opt, lr: float) -> None:
    opt.lr = lr


def matched_target(spec: dict, path) -> dict:
    """A matched run's spec: its target becomes the achieved group sparsity (zero groups / groups)
    of the DHSPG run at `path`, the checkpoint of `spec['match']`."""
    meta = checkpoint.load(path, f"DHSPG run {spec['match']}")["state"]["meta"]
    if meta.get("run") != spec["match"] or meta.get("spec", {}).get("method") != "dhspg":
        raise ConfigError(f"io.match={path} holds run {meta.get('run')!r}; runs.*.match names the DHSPG run {spec['match']!r}")
    return {**spec, "nominal_target": spec["target"], "target": int(meta["zero_groups"]) / int(meta["groups"]),
            "matched_to": spec["match"], "matched_groups": int(meta["zero_groups"])}


def main(cfg: DictConfig) -> dict:
    name, data_path, part_path, out = need_io(cfg, "run", "data", "partition", "out")
    spec = run_spec(cfg, name)
    if spec.get("match"):
        (ref,) = need_io(cfg, "match")
        spec = matched_target(spec, ref)
    seed = int(cfg.seed)
    rt = runtime.start(cfg, seed)
    d = load_npz(data_path, "Fashion-MNIST subset")
    x, y = torch.from_numpy(d["x_train"]).to(rt.device), torch.from_numpy(d["y_train"]).to(rt.device)
    t = cfg.train
    batches = Batches(x, y, int(t.batch), seed, bool(t.augment))
    total = int(t.epochs) * batches.per_epoch
    model = net.build(cfg.model).to(rt.device)
    part = net.load_partition(part_path)
    families = net.families(model, part)
    opt, pruner = make_optimizer(spec, cfg, model, part, families, batches.per_epoch)
    cric_record = checkpoint.Snapshots()
    objects = {"model": model, "optimizer": opt, "cric": cric_record}
    if pruner is not None:
        objects["pruner"] = pruner
    loop = checkpoint.TrainLoop(cfg, out, total, desc=f"{name}", **objects)
    log.info(f"run {name}: {spec} · {sum(f.n for f in families)} groups in {len(families)} families · "
             f"{total} steps ({t.epochs} epochs × {batches.per_epoch}) on {rt.description}")
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for step in loop:
        set_lr(opt, cosine_lr(float(t.lr), step, total))
        if spec["method"] == "cric" and step == pruner.start and not cric_record:
            cric_record.update(run_cric(cfg, spec, model, opt, families, batches, loss_fn))
            pruner.preselected = list(cric_record["selected"])
        xb, yb = batches(step)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        if pruner is not None:
            pruner.before_update(step)
        opt.step()
        if pruner is not None:
            pruner.after_update(step)
        loop.log(loss=float(loss.detach()))
    recalibrate_bn(model, batches, int(t.bn_recal_batches))
    norms = group_norms(families)
    fam = family_of(families)
    emptied = [f.name for i, f in enumerate(families) if bool((norms[fam == i] == 0).all())]
    meta = {"run": name, "spec": spec, "groups": int(norms.numel()),
            "zero_groups": int((norms == 0).sum()), "group_sparsity": float((norms == 0).float().mean()),
            "pruned": pruned_ids(pruner, opt), "emptied_families": emptied,
            "history": list(getattr(pruner, "history", [])), "cric": dict(cric_record), "train": loop.record()}
    checkpoint.save(out, cfg, total, model=model, meta=meta)
    loop.finish()
    log.info(f"run {name}: group sparsity {meta['group_sparsity']:.3f} ({meta['zero_groups']}/{meta['groups']}), "
             f"emptied families {emptied or 'none'}")
    return meta


def pruned_ids(pruner, opt) -> list[int]:
    """Global indices of the groups the method pruned (HESSO's committed set, DHSPG's projected)."""
    if pruner is not None:
        return sorted(pruner.pruned)  # global (family-ordered) indices
    if hasattr(opt, "pruned"):
        return [int(i) for i in torch.nonzero(opt.pruned).flatten()]
    return []


def run_cric(cfg, spec, model, opt, families, batches: Batches, loss_fn) -> dict:
    """CRIC's identification (steps.hesso.cric) on exploratory batches; the state is restored."""
    from steps.hesso import cric

    c = cfg.cric
    fixed_x, fixed_y = batches.x[: int(c.fixed_batch)], batches.y[: int(c.fixed_batch)]
    weights = spec.get("weights") or OmegaConf.to_container(cfg.hesso.weights)
    rec = cric.run(
        families, model, opt,
        train_loss=lambda i: loss_fn(model(batches(i, "cric")[0]), batches(i, "cric")[1]),
        fixed_loss=lambda: loss_fn(model(fixed_x), fixed_y),
        target=float(spec["target"]), weights=weights, loss_weight=float(c.loss_weight),
        trial_sparsities=list(c.trial_sparsities), max_cycles=int(c.max_cycles),
        sampling_steps=int(c.sampling_steps), tolerance=int(c.tolerance),
        weight_decay=float(cfg.train.weight_decay), min_keep=int(cfg.hesso.min_keep))
    log.info(f"CRIC: {len(rec['cycles'])} cycles {rec['cycles']}, restore exact {rec['restore_exact']}, "
             f"{rec['exploratory_steps']} exploratory steps")
    return rec


if __name__ == "__main__":
    run(main, "hesso", "train")
