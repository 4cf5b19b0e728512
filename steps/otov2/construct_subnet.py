"""Phase `construct_subnet`: every trained network → its compact subnetwork (all-zero ZIGs
removed), and the check that the two give the same outputs on test images.

    python -m steps.otov2.construct_subnet scale=mini io.partition=... io.models=models/otov2 io.out=results/otov2/equivalence.json
    python -m steps.otov2.construct_subnet scale=full io.raw=data/otov2/cifar10 io.partition=... io.models=models/otov2 \
        io.out=results/otov2/equivalence.json
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from steps.core import checkpoint, metrics
from steps.core.cli import need_io, run
from steps.core.io import save_torch
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:

    from steps.nn import compression, zig
    from steps.otov2.common import all_runs, data, for_net, load_partition, model

    part_path, models, out = need_io(cfg, "partition", "models", "out")
    t0 = time.monotonic()
    xt, _ = data(cfg, "test")
    x = xt[: int(cfg.construct.check_images)]
    values, parts = {}, {}
    for net_name, _, _, name in all_runs(cfg):
        if net_name not in parts:
            parts[net_name] = load_partition(part_path, net_name)
        part = parts[net_name]
        payload = checkpoint.load(Path(models) / f"{name}.pt", f"trained model {name}")
        net = model(for_net(cfg, net_name))
        net.load_state_dict(payload["state"]["model"])
        compact = zig.construct_subnet(net, part)
        diff = zig.max_abs_diff(net, compact, x)
        p_full = compression.count_params(net)["total"]
        p_comp = compression.count_params(compact)["total"]
        save_torch(Path(models) / f"{name}_compact.pt", compact)  # the whole module, sealed
        values[name] = {"max_abs_diff": diff, "removed_groups": int(zig.GroupIndex(net, part).zero_groups().sum()),
                        "params_full": p_full, "params_compact": p_comp}
        log.info(f"{name}: {p_full} → {p_comp} parameters, max |full − compact| = {diff:.2e}")
    worst = max(v["max_abs_diff"] for v in values.values())
    metrics.write(out, cfg, "equivalence", f"max |f_full(x) − f_compact(x)| on {len(x)} test images, per run",
                  {"runs": values, "max_abs_diff": worst, "images": len(x)}, time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "otov2", "construct_subnet")
