"""Phase `bench` (full scale only): one throughput benchmark of the paper's case studies (§6):
`model` trained by `framework` with `parallelism` on `nodes` nodes of 8 GPUs. The command is the
framework's own benchmark script, from `full.frameworks.<framework>.command` (a template over the
benchmark's fields and the dataset path); its log is parsed for throughput with
`full.frameworks.<framework>.throughput_regex` (the mean over the logged values after
`full.warmup_lines`). The rule starts one process per GPU (srun / torchrun, steps.core.distributed);
each runs the command as that rank, with the launcher's environment (RANK, WORLD_SIZE,
MASTER_ADDR, LOCAL_RANK), which the frameworks' distributed launchers read; rank 0's throughput is
written as results/oneflow/bench_<model>_<framework>_<parallelism>_<nodes>.json.

    python -m steps.oneflow.bench scale=full io.bench=resnet50_oneflow_dp_4 io.data=data/oneflow/imagenet \
        io.metrics=results/oneflow/bench_resnet50_oneflow_dp_4.json
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time

from omegaconf import DictConfig, OmegaConf

from steps.core import distributed, metrics
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError, PaperzooError
from steps.core.progress import log


def bench_id(b: dict) -> str:
    return f"{b['model']}_{b['framework']}_{b['parallelism']}_{b['nodes']}"


def find(cfg, ident: str) -> dict:
    benches = OmegaConf.to_container(cfg.full.benchmarks, resolve=True)
    for b in benches:
        if bench_id(b) == ident:
            return b
    raise ConfigError(f"unknown benchmark {ident!r}; full.benchmarks has: {', '.join(bench_id(b) for b in benches)}")


def throughput(lines: list[str], pattern: str, warmup: int) -> tuple[float, int]:
    """Mean of the numbers the regex's first group captures, after `warmup` matches."""
    vals = [float(m.group(1)) for line in lines if (m := re.search(pattern, line))]
    if len(vals) <= warmup:
        raise PaperzooError(f"the benchmark logged {len(vals)} throughput lines (regex {pattern!r}), "
                            f"not more than the {warmup} warm-up ones: see its log")
    kept = vals[warmup:]
    return sum(kept) / len(kept), len(kept)


def main(cfg: DictConfig) -> dict:
    ident, data, out = need_io(cfg, "bench", "data", "metrics")
    b = find(cfg, ident)
    fw = cfg.full.frameworks.get(b["framework"])
    if fw is None:
        raise ConfigError(f"no full.frameworks.{b['framework']} (command, throughput_regex)")
    cmd = str(fw.command).format(**b, data=data, gpus_per_node=int(cfg.full.gpus_per_node))
    log.info(f"{ident}: {cmd}")
    t0 = time.monotonic()
    proc = subprocess.Popen(shlex.split(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        sys.stderr.write(line)
        lines.append(line)
    if proc.wait() != 0:
        rank = distributed.rank_of_process()
        raise PaperzooError(f"{ident}: rank {rank}: the benchmark command exited with status {proc.returncode} (its output is in this log)")
    if distributed.rank_of_process() != 0:
        return {}
    value, n = throughput(lines, str(fw.throughput_regex), int(cfg.full.warmup_lines))
    gpus = int(b["nodes"]) * int(cfg.full.gpus_per_node)
    values = {"throughput": value, "per_gpu": value / gpus, "gpus": gpus, "samples": n}
    metrics.write(out, cfg, f"bench_{ident}", f"{b['model']} with {b['framework']} ({b['parallelism']}) on {gpus} GPUs: "
                  f"throughput ({b.get('unit', 'samples/s')})", values, time.monotonic() - t0, f"{gpus} GPUs")
    return values


if __name__ == "__main__":
    run(main, "oneflow", "bench")
