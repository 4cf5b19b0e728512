"""Phase `qat`: stage 2 of GPUSQ-ViT (§3.3), sparse-distillation-aware quantization-aware
training. The 2:4-sparse model is fake-quantized to INT8 or INT4 (symmetric per-output-channel
weights, per-tensor activations, straight-through estimator), its mask kept fixed, and
fine-tuned with the mixed KD loss from the dense FP32 teacher; the feature-distillation terms
are weighted by each block's importance, here its loss sensitivity to being quantized alone.

Arms (config `qat.arms`): GPUSQ-ViT at INT8 / INT4, the same without distillation (CE only,
from the no-KD sparse model), and the unstructured-50 % model with KD at INT8.

    python -m steps.gpusq_vit.qat scale=mini io.arm=gpusq_int4 io.data=data/gpusq_vit/fmnist.npz io.sparse=models/gpusq_vit/prune_sp24_kd.pt \
        io.teacher=models/gpusq_vit/dense.pt io.out=models/gpusq_vit/qat_gpusq_int4.pt
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.gpusq_vit.common import (
    accuracy_on,
    calibrate,
    layer_importance,
    load_model,
    save_model,
    set_quant,
    start_arm,
    train,
)
from steps.nn.fake_quant import quant_weight


def main(cfg: DictConfig) -> dict:
    arm_name, data_path, sparse_path, teacher_path, out = need_io(cfg, "arm", "data", "sparse", "teacher", "out")
    t0 = time.monotonic()
    arm, dev, seed, data, teacher = start_arm(cfg, "qat", arm_name, data_path, teacher_path)
    net, smeta = load_model(sparse_path, cfg.model, f"sparse model {arm.source}")
    net = net.to(dev)
    if smeta.get("arm") != arm.source:
        raise ConfigError(f"qat arm {arm_name} starts from {arm.source}, but {sparse_path} holds {smeta.get('arm')}")
    wb, ab = int(arm.w_bits), int(arm.a_bits)
    n_imp, n_cal = int(cfg.kd.importance_n), int(cfg.quant.calib_n)
    x_head, y_head = data.head(max(n_imp, n_cal) if arm.kd else n_cal)  # decoded once for both uses
    importance = None
    if arm.kd:  # quantization sensitivity of each block of the sparse model, at this weight width
        importance = layer_importance(net, x_head[:n_imp], y_head[:n_imp],
                                      lambda m: quant_weight(m.weight * m.mask, wb), data.chunk)
        log.info(f"{arm_name}: layer importance (INT{wb} sensitivity) {[round(v, 3) for v in importance]}")
    set_quant(net, wb, ab, float(cfg.quant.momentum))
    calibrate(net, x_head[:n_cal])
    before = accuracy_on(net, data.test_batches())
    res = train(cfg, net, data, cfg.qat, out, seed, f"qat {arm_name}", teacher if arm.kd else None, importance)
    acc = accuracy_on(net, data.test_batches())
    log.info(f"{arm_name}: W{wb}A{ab} before QAT {before:.4f} → after {acc:.4f} ({time.monotonic() - t0:.1f} s)")
    save_model(out, cfg, net, {"arm": arm_name, "source": str(arm.source), "quant": {"w_bits": wb, "a_bits": ab},
                               "pattern": smeta.get("pattern"), "kd": bool(arm.kd), "importance": importance,
                               "ptq_accuracy": before, "train": res["record"]})
    res["loop"].finish()
    return {"accuracy": acc, "before": before}


if __name__ == "__main__":
    run(main, "gpusq_vit", "qat")
