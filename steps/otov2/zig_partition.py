"""Phase `zig_partition`: trace the model once and write its zero-invariant groups (at full
scale, one partition per net: {"nets": {name: partition}}, metrics per net).

    python -m steps.otov2.zig_partition scale=mini io.out=models/otov2/zig_groups.json io.metrics=results/otov2/partition.json
    python -m steps.otov2.zig_partition scale=full io.out=models/otov2/zig_groups.json io.metrics=results/otov2/partition.json
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
    from steps.otov2.common import for_net, model, nets

    out, metrics_path = need_io(cfg, "out", "metrics")
    t0 = time.monotonic()
    parts, values = {}, {}
    for name in nets(cfg):
        c = for_net(cfg, name)
        torch.manual_seed(int(c.train.seed))
        net = model(c)
        example = torch.zeros(2, int(c.data.channels), int(c.data.size), int(c.data.size))
        part = zig.partition(net, example)
        acc = compression.account(net, example[:1])
        v = {**part.summary(), "params": acc["params"]["total"], "mflops": acc["flops"]["dense"] / 1e6,
             "groups_per_layer": {n.replace(".", "_"): len({k for k in layer.out_keys if k >= 0})
                                  for n, layer in part.layers.items() if layer.kind == "linear"}}
        log.info(f"{name or c.model.arch}: {part.num_groups} ZIGs ({v['coupled_groups']} coupled across adds), "
                 f"{part.fixed_channels} fixed channels")
        parts[name], values[name] = part.to_dict(), v
    if nets(cfg) == [None]:
        write_json(out, parts[None], artifact=True)
        values = values[None]
    else:
        write_json(out, {"nets": parts}, artifact=True)
    metrics.write(metrics_path, cfg, "partition", "the automatic ZIG partition of the model", values,
                  time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "otov2", "zig_partition")
