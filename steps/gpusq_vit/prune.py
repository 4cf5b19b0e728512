"""Phase `prune`: stage 1 of GPUSQ-ViT (§3.2): prune every GEMM weight of the dense model to the
2:4 pattern (keep the 2 largest |w| of each 4 consecutive input weights), then fine-tune with
the mask fixed, distilling from the dense teacher (mixed-strategy KD, §3.3).

Arms (config `prune.arms`): the 2:4 mask with KD (GPUSQ-ViT), with CE only (no-distillation
ablation), and an unstructured magnitude mask at the same 50 % density (a GPU-unfriendly
reference that the hardware cannot accelerate).

    python -m steps.gpusq_vit.prune scale=mini io.arm=sp24_kd io.data=data/gpusq_vit/fmnist.npz io.teacher=models/gpusq_vit/dense.pt \
        io.out=models/gpusq_vit/prune_sp24_kd.pt
"""

from __future__ import annotations

import copy
import time

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.gpusq_vit.common import (
    accuracy_on,
    layer_importance,
    prune_2to4,
    save_model,
    start_arm,
    train,
)
from steps.nn.nm_sparsity import is_nm_sparse, magnitude_mask, nm_mask


def apply_pattern(net, pattern: str, density: float) -> None:
    """Set every GEMM layer's mask: '2:4' (N:M along the input dimension) or 'unstructured'
    (layer-wise magnitude at `density`)."""
    for m in net.qlinears().values():
        if pattern == "unstructured":
            m.set_mask(magnitude_mask(m.weight, density))
        elif ":" in pattern:
            n, mm = (int(v) for v in pattern.split(":"))
            m.set_mask(nm_mask(m.weight, n, mm))
        else:
            raise ConfigError(f"prune pattern '{pattern}': use 'N:M' such as '2:4', or 'unstructured'")


def main(cfg: DictConfig) -> dict:
    arm_name, data_path, teacher_path, out = need_io(cfg, "arm", "data", "teacher", "out")
    t0 = time.monotonic()
    arm, dev, seed, data, teacher = start_arm(cfg, "prune", arm_name, data_path, teacher_path)
    net = copy.deepcopy(teacher)
    importance = None
    if arm.kd:  # before pruning: how much each block's loss rises when only it is 2:4-pruned
        importance = layer_importance(net, *data.head(int(cfg.kd.importance_n)), prune_2to4, data.chunk)
        log.info(f"{arm_name}: layer importance (2:4 sensitivity) {[round(v, 3) for v in importance]}")
    apply_pattern(net, str(arm.pattern), float(arm.density))
    one_shot = accuracy_on(net, data.test_batches())
    res = train(cfg, net, data, cfg.prune, out, seed, f"prune {arm_name}", teacher if arm.kd else None, importance)
    acc = accuracy_on(net, data.test_batches())
    if ":" in str(arm.pattern):
        n, m = (int(v) for v in str(arm.pattern).split(":"))
        bad = [k for k, q in net.qlinears().items() if not is_nm_sparse(q.weight, n, m)]
        if bad:  # the mask must survive fine-tuning exactly (pitfall: densified weights)
            raise AssertionError(f"{arm_name}: layers no longer {arm.pattern} after fine-tuning: {bad}")
    log.info(f"{arm_name}: one-shot accuracy {one_shot:.4f} → fine-tuned {acc:.4f} ({time.monotonic() - t0:.1f} s)")
    save_model(out, cfg, net, {"arm": arm_name, "quant": None, "pattern": str(arm.pattern), "kd": bool(arm.kd),
                               "importance": importance, "one_shot_accuracy": one_shot, "train": res["record"]})
    res["loop"].finish()
    return {"accuracy": acc, "one_shot": one_shot}


if __name__ == "__main__":
    run(main, "gpusq_vit", "prune")
