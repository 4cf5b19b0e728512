"""Phase `ptq`: post-training quantization, the baseline QAT must beat. A model (the 2:4-sparse
GPUSQ model, or the dense teacher as a quantizer check) is fake-quantized with the same
quantizers as QAT (per-channel weights, per-tensor activations) and min–max calibrated on
`quant.calib_n` training images; no training.

    python -m steps.gpusq_vit.ptq scale=mini io.data=data/gpusq_vit/fmnist.npz io.dense=models/gpusq_vit/dense.pt \
        io.sparse=models/gpusq_vit/prune_sp24_kd.pt io.models=models/gpusq_vit
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from steps.core import device, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.gpusq_vit.common import accuracy_on, calibrate, load_model, save_model, set_quant
from steps.gpusq_vit.datasets import open_data


def main(cfg: DictConfig) -> dict:
    data_path, dense_path, sparse_path, models = need_io(cfg, "data", "dense", "sparse", "models")
    t0 = time.monotonic()
    dev, _ = device.setup(cfg.device, int(cfg.threads))
    seeding.seed_everything(int(cfg.seed))
    data = open_data(cfg, data_path, dev)
    x_cal = data.head(int(cfg.quant.calib_n))[0]
    sources = {"dense": dense_path, "sp24_kd": sparse_path}
    out = {}
    for name, arm in cfg.ptq.arms.items():
        if arm.source not in sources:
            raise ConfigError(f"ptq arm {name}: source must be one of {', '.join(sources)}, got {arm.source}")
        net, meta = load_model(sources[arm.source], cfg.model, arm.source)
        net = net.to(dev)
        wb, ab = int(arm.w_bits), int(arm.a_bits)
        set_quant(net, wb, ab, float(cfg.quant.momentum))
        calibrate(net, x_cal)
        out[name] = accuracy_on(net, data.test_batches())
        log.info(f"{name}: {arm.source} W{wb}A{ab} post-training quantized, accuracy {out[name]:.4f}")
        save_model(Path(models) / f"{name}.pt", cfg, net, {"arm": name, "source": str(arm.source),
                   "quant": {"w_bits": wb, "a_bits": ab}, "pattern": meta.get("pattern"), "kd": False})
    log.info(f"ptq: {len(out)} models in {time.monotonic() - t0:.1f} s")
    return out


if __name__ == "__main__":
    run(main, "gpusq_vit", "ptq")
