"""Phase `prune`: gradual magnitude pruning of the 1×1 convolutions (§4; Zhu & Gupta 2017).

Starts from the dense run's snapshot at prune.begin_epoch and trains the remaining epochs of the
same cosine schedule; the target sparsity of every 1×1 layer follows the cubic ramp from 0 at
begin_epoch to `sparsity` at prune.end_epoch, masks recomputed every prune.every_steps steps
(unstructured, or 1×4 blocks along the output channels), then held.

    python -m steps.fast_sparse_convnets.prune scale=mini io.dense=models/fast_sparse_convnets/dense_w2.pt \
        io.sparsity=0.9 io.block=4 io.out=models/fast_sparse_convnets/sparse_w2_s0.9_b4.pt
"""

from __future__ import annotations

import time

import torch
from omegaconf import DictConfig

from steps.core import checkpoint
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.fast_sparse_convnets import common
from steps.fast_sparse_convnets.model import (
    apply_masks,
    build,
    cubic_sparsity,
    layer_sparsity,
    magnitude_mask,
)


def main(cfg: DictConfig) -> dict:
    dense_path, sparsity, block, out = need_io(cfg, "dense", "sparsity", "block", "out")
    sparsity, block = float(sparsity), int(block)
    if not 0.0 < sparsity < 1.0 or block < 1:
        raise ConfigError(f"prune needs 0 < sparsity < 1 and block ≥ 1, got {sparsity}, {block}")
    t0 = time.monotonic()
    dev, device = common.set_device(cfg)
    common.seed_all(int(cfg.seed))
    dense = checkpoint.load(dense_path, "dense checkpoint")
    width = float(dense["state"]["meta"]["width"])
    data = common.load_data(cfg, "train")
    model = build(cfg.model, width)
    model.load_state_dict(dense["state"]["snapshot"]["model"])
    model.to(dev)
    opt = common.optimizer(cfg, model)
    opt.load_state_dict(dense["state"]["snapshot"]["optimizer"])
    per = common.steps_per_epoch(len(data), int(cfg.train.batch))
    total = per * int(cfg.train.epochs)
    first = int(dense["state"]["meta"]["snapshot_step"])
    t_begin, t_end = first, per * int(cfg.prune.end_epoch)
    every = int(cfg.prune.every_steps)
    masks = checkpoint.Snapshots(m=[torch.ones_like(c.weight) for c in model.pointwise()])

    def on_step(step, after):
        if after:  # masked weights stay zero after the optimiser's update
            apply_masks(model, masks["m"])
            return
        if (step - t_begin) % every == 0 or step == t_end:
            s = cubic_sparsity(step, 0.0, sparsity, t_begin, t_end)
            masks["m"] = [magnitude_mask(c.weight, s, block) for c in model.pointwise()]
            apply_masks(model, masks["m"])

    loop = common.train(cfg, model, opt, data, out, first, total, total, int(cfg.seed), on_step=on_step,
                        desc=f"prune w{common.fmt_width(width)} s{sparsity:g} b{block}", device=dev, masks=masks)
    # the final mask at exactly the target (the last update may precede t_end at smoke scale)
    final = [magnitude_mask(c.weight, sparsity, block) for c in model.pointwise()]
    if any(bool((m0 != m1).any()) for m0, m1 in zip(final, masks["m"], strict=True)):
        apply_masks(model, final)
    achieved = layer_sparsity(model)
    meta = {"width": width, "sparsity": sparsity, "block": block, "layer_sparsity": achieved,
            "train": loop.record(), "device": device}
    checkpoint.save(out, cfg, total, model=model.cpu(), meta=meta)
    loop.finish()
    log.info(f"pruned w{width:g} s{sparsity} b{block}: layer sparsity {[round(a, 3) for a in achieved]} "
             f"in {time.monotonic() - t0:.1f} s")
    return meta


def cli() -> None:
    run(main, common.PAPER, "prune")


if __name__ == "__main__":
    cli()
