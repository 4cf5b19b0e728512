"""Phase `dense`: the dense FP32 ViT, GPUSQ-ViT's starting point and the teacher of every
distillation (§3.1: "an original large model with dense weight parameters").

    python -m steps.gpusq_vit.dense scale=mini io.data=data/gpusq_vit/fmnist.npz io.out=models/gpusq_vit/dense.pt
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from steps.core import device, seeding
from steps.core.cli import need_io, run
from steps.core.progress import log
from steps.gpusq_vit.common import accuracy, load_data, save_model, train
from steps.gpusq_vit.vit import build


def main(cfg: DictConfig) -> dict:
    data_path, out = need_io(cfg, "data", "out")
    t0 = time.monotonic()
    dev, desc = device.setup(cfg.device, int(cfg.threads))
    seed = int(cfg.seed)
    seeding.seed_everything(seed)
    data = load_data(data_path)
    net = build(cfg.model).to(dev)
    log.info(f"dense ViT: {sum(p.numel() for p in net.parameters())} parameters, {len(data['y_train'])} training images, {desc}")
    res = train(cfg, net, data, cfg.dense, out, seed, "dense")
    acc = accuracy(net, data["x_test"], data["y_test"])
    log.info(f"dense ViT: test accuracy {acc:.4f} ({time.monotonic() - t0:.1f} s)")
    save_model(out, cfg, net, {"arm": "dense", "quant": None, "pattern": "dense", "train": res["record"]})
    res["loop"].finish()
    return {"accuracy": acc}


if __name__ == "__main__":
    run(main, "gpusq_vit", "dense")
