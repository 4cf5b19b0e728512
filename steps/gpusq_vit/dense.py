"""Phase `dense`: the dense FP32 ViT, GPUSQ-ViT's starting point and the teacher of every
distillation (§3.1: "an original large model with dense weight parameters"). Smoke and mini
train it here from scratch; at full scale (dense.init_from) it is the released pretrained
DeiT, converted from timm's layout (steps.gpusq_vit.deit) and only evaluated, not trained.

    python -m steps.gpusq_vit.dense scale=mini io.data=data/gpusq_vit/fmnist.npz io.out=models/gpusq_vit/dense.pt
    python -m steps.gpusq_vit.dense scale=full dense.init_from=models/gpusq_vit/deit_small_patch16_224-cd65a155.pth \
        io.data=data/gpusq_vit/imagenet_index.json io.out=models/gpusq_vit/dense.pt
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from steps.core import device, seeding
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.gpusq_vit.common import accuracy_on, save_model, train
from steps.gpusq_vit.datasets import open_data
from steps.gpusq_vit.vit import build


def main(cfg: DictConfig) -> dict:
    data_path, out = need_io(cfg, "data", "out")
    t0 = time.monotonic()
    dev, desc = device.setup(cfg.device, int(cfg.threads))
    seed = int(cfg.seed)
    seeding.seed_everything(seed)
    data = open_data(cfg, data_path, dev)
    net = build(cfg.model)
    init = cfg.dense.get("init_from")
    if init:  # full: the pretrained DeiT is the dense model (no training here)
        from steps.gpusq_vit import deit

        net.load_state_dict(deit.from_timm(deit.read_checkpoint(init), net))
        net = net.to(dev)
        log.info(f"dense ViT: pretrained weights of {init}, {sum(p.numel() for p in net.parameters())} parameters, {desc}")
        res = None
    else:
        net = net.to(dev)
        log.info(f"dense ViT: {sum(p.numel() for p in net.parameters())} parameters, {data.n_train} training images, {desc}")
        res = train(cfg, net, data, cfg.dense, out, seed, "dense")
    acc = accuracy_on(net, data.test_batches())
    log.info(f"dense ViT: test accuracy {acc:.4f} ({time.monotonic() - t0:.1f} s)")
    save_model(out, cfg, net, {"arm": "dense", "quant": None, "pattern": "dense", "init_from": str(init) if init else None,
                               "train": res["record"] if res else None})
    if res:
        res["loop"].finish()
    return {"accuracy": acc}


if __name__ == "__main__":
    run(main, "gpusq_vit", "dense")
