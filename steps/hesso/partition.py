"""Phase `partition`: the zero-invariant groups of the DemoResNet (shared ZIG tracer
steps.nn.zig: torch.fx through the residual adds and the concat), written once for every run,
with HESSO's view of them (families: the groups that share tensors).

    python -m steps.hesso.partition scale=mini io.out=models/hesso/zig_groups.json
"""

from __future__ import annotations

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.io import write_json
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    from steps.hesso import net
    from steps.hesso.groups import families_from_partition

    (out,) = need_io(cfg, "out")
    model = net.build(cfg.model)
    part = net.partition(model, cfg.model, int(cfg.data.size))
    fams = families_from_partition(model, part)
    summary = {**part.summary(), "families": [{"name": f.name, "groups": f.n} for f in fams]}
    write_json(out, {"summary": summary, "partition": part.to_dict()}, artifact=True)
    log.info(f"ZIG partition: {part.num_groups} groups in {len(fams)} families "
             f"({', '.join(f'{f.name}: {f.n}' for f in fams)}); {part.fixed_channels} fixed channels")
    return summary


if __name__ == "__main__":
    run(main, "hesso", "partition")
