"""Phase `zig_partition`: trace the model once and write its zero-invariant groups.

    python -m steps.otov2.zig_partition scale=mini io.out=models/otov2/zig_groups.json io.metrics=results/otov2/partition.json
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.io import write_json
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    import torch

    from steps.nn import compression, zig
    from steps.otov2.common import model

    out, metrics_path = need_io(cfg, "out", "metrics")
    t0 = time.monotonic()
    torch.manual_seed(int(cfg.train.seed))
    net = model(cfg)
    example = torch.zeros(2, 1, int(cfg.data.size), int(cfg.data.size))
    part = zig.partition(net, example)
    write_json(out, part.to_dict())
    acc = compression.account(net, example[:1])
    values = {**part.summary(), "params": acc["params"]["total"], "mflops": acc["flops"]["dense"] / 1e6,
              "groups_per_layer": {n.replace(".", "_"): len({k for k in layer.out_keys if k >= 0}) for n, layer in part.layers.items()
                                   if layer.kind == "linear"}}
    log.info(f"{part.num_groups} ZIGs ({values['coupled_groups']} coupled across adds), {part.fixed_channels} fixed channels")
    metrics.write(metrics_path, cfg, "partition", "the automatic ZIG partition of the model", values,
                  time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "otov2", "zig_partition")
