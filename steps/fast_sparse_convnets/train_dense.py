"""Phase `train_dense`: one dense MobileNet-v1-style network at a width multiplier.

Besides the final weights, the checkpoint keeps a snapshot (model and optimiser) at the epoch
where pruning begins (prune.begin_epoch): the pruned runs of this width continue from it, so a
sparse model gets exactly the dense model's training budget, with gradual pruning during its
later epochs (the paper, §4, after Zhu & Gupta 2017), not extra fine-tuning on top.

    python -m steps.fast_sparse_convnets.train_dense scale=mini io.width=1.0 io.out=models/fast_sparse_convnets/dense_w1.pt
"""

from __future__ import annotations

import copy
import time

from omegaconf import DictConfig

from steps.core import checkpoint
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.fast_sparse_convnets import common
from steps.fast_sparse_convnets.model import build


def main(cfg: DictConfig) -> dict:
    width, out = need_io(cfg, "width", "out")
    t0 = time.monotonic()
    dev, device = common.set_device(cfg)
    common.seed_all(int(cfg.seed))
    data = common.load_data(cfg, "train")
    model = build(cfg.model, float(width)).to(dev)
    opt = common.optimizer(cfg, model)
    per = common.steps_per_epoch(len(data), int(cfg.train.batch))
    total = per * int(cfg.train.epochs)
    snap_step = per * int(cfg.prune.begin_epoch)
    snaps = checkpoint.Snapshots()

    def on_step(step, after):
        if not after and step == snap_step and "model" not in snaps:
            snaps["model"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            snaps["optimizer"] = copy.deepcopy(opt.state_dict())

    loop = common.train(cfg, model, opt, data, out, 0, total, total, int(cfg.seed), on_step=on_step,
                        desc=f"dense w{common.fmt_width(width)}", device=dev, snaps=snaps)
    if "model" not in snaps:  # begin_epoch == epochs: the snapshot is the final model
        snaps["model"], snaps["optimizer"] = model.state_dict(), opt.state_dict()
    meta = {"width": float(width), "steps": total, "snapshot_step": snap_step,
            "train": loop.record(), "device": device}
    checkpoint.save(out, cfg, total, model=model.cpu(), snapshot=dict(snaps), meta=meta)
    loop.finish()
    log.info(f"dense w{width}: {total} steps in {time.monotonic() - t0:.1f} s")
    return meta


def cli() -> None:
    run(main, common.PAPER, "train_dense")


if __name__ == "__main__":
    cli()
