"""Benchmark data-parallel training: throughput against world size and global batch size.

    python -m steps.core.bench_distributed                        # CPU: 1 and 2 processes
    python -m steps.core.bench_distributed --worlds 1,2,4,8 --batches 256,1024 --hidden 4096 --depth 8
    python -m steps.core.bench_distributed --micro-batch 64       # gradient accumulation

For each (world size W, global batch B) it starts W processes exactly as a training rule does
(steps.core.distributed.launch_command: plain python for W = 1, torchrun otherwise) and trains
an MLP of `--hidden` × `--depth` on random data with the same machinery as the papers' steps
(runtime.start, DDP, batch_plan, backward, bf16 autocast where `--precision` auto picks it).
It reports steps/s, samples/s, the speed-up over one process and the scaling efficiency
(speed-up / W), and per process the peak memory: max RSS, and on CUDA GPUs
torch.cuda.max_memory_allocated plus the GPUs' utilisation and memory sampled by nvidia-smi
while the timed steps ran. Writes a JSON file (default benchmarks/distributed_<device>.json)
and prints a table. A benchmark, not a test: nothing here asserts a speed.

On a CPU-only machine W processes share the cores (each gets cores / W threads), so the
speed-up measures DDP's overhead rather than a gain; on GPUs each process has its own GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from steps.core import distributed

# ---------------------------------------------------------------------------------- the worker

def worker(a: argparse.Namespace) -> None:
    """One process of a run: train for warmup + steps steps, time the last `steps`."""
    import resource

    import torch
    from omegaconf import OmegaConf

    from steps.core import runtime, seeding

    cfg = OmegaConf.create({"device": a.device, "threads": 0, "dist": {"timeout_s": 300.0}, "phase": "bench"})
    rt = runtime.start(cfg, 0)
    dist, dev = rt.dist, rt.device
    torch.manual_seed(0)
    layers, width = [], a.dim
    for _ in range(a.depth):
        layers += [torch.nn.Linear(width, a.hidden), torch.nn.GELU()]
        width = a.hidden
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, a.dim)).to(dev)
    wrapped = dist.wrap(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    prec = distributed.precision(a.precision, dev)
    plan = distributed.batch_plan(a.batch, a.micro_batch or None, dist.world)

    def step(i: int) -> float:
        g = seeding.step_generator(0, "bench", i)
        x = torch.randn(plan.global_batch, a.dim, generator=g)  # the global batch, as the steps draw it
        y = torch.randn(plan.global_batch, a.dim, generator=g)

        def micro_loss(_, sl):
            return torch.nn.functional.mse_loss(wrapped(x[sl].to(dev, non_blocking=True)), y[sl].to(dev, non_blocking=True))

        opt.zero_grad(set_to_none=True)
        loss = distributed.backward(dist, wrapped, plan, prec, dev, micro_loss)
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dist.barrier()

    for i in range(a.warmup):
        step(i)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0, wall0 = time.perf_counter(), time.time()
    for i in range(a.warmup, a.warmup + a.steps):
        loss = step(i)
    sync()
    elapsed, wall1 = time.perf_counter() - t0, time.time()
    out = {"rank": dist.rank, "world": dist.world, "device": rt.description, "precision": prec, **plan.record(),
           "params": sum(p.numel() for p in model.parameters()), "steps": a.steps, "seconds": elapsed,
           "t0": wall0, "t1": wall1, "loss": loss,
           "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if dev.type == "cuda":
        out["max_memory_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        out["gpu_index"] = dev.index
    Path(f"{a.out}.rank{dist.rank}.json").write_text(json.dumps(out))


# ----------------------------------------------------------------------------------- the parent

class GpuSampler:
    """nvidia-smi's utilisation and memory of every GPU, sampled in the background."""

    def __init__(self, every_ms: int = 200):
        self.samples: list[tuple[float, int, float, float]] = []  # (time, index, util %, memory MiB)
        self.proc = None
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=timestamp,index,utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                 f"-lms={every_ms}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            parsed = parse_smi_line(line)
            if parsed:
                self.samples.append(parsed)

    def window(self, t0: float, t1: float, gpus: set[int]) -> dict:
        rows = [s for s in self.samples if t0 <= s[0] <= t1 and s[1] in gpus]
        if not rows:
            return {}
        return {"gpu_util_mean_pct": sum(r[2] for r in rows) / len(rows),
                "gpu_memory_used_max_mb": max(r[3] for r in rows), "gpu_samples": len(rows)}

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


def parse_smi_line(line: str) -> tuple[float, int, float, float] | None:
    """'2026/11/27 10:00:00.123, 0, 97, 12345' → (epoch seconds, 0, 97.0, 12345.0)."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 4:
        return None
    try:
        t = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        return t, int(parts[1]), float(parts[2]), float(parts[3])
    except ValueError:
        return None


def run_one(world: int, batch: int, a: argparse.Namespace, sampler: GpuSampler | None, tmp: Path) -> dict:
    out = tmp / f"w{world}_b{batch}"
    prefix = distributed.launch_command({"gpu": world}, shutdown_s=30, python=shlex.quote(sys.executable))
    args = ["--worker", f"--batch={batch}", f"--micro-batch={a.micro_batch}", f"--steps={a.steps}", f"--warmup={a.warmup}",
            f"--dim={a.dim}", f"--hidden={a.hidden}", f"--depth={a.depth}", f"--precision={a.precision}",
            f"--device={a.device}", f"--out={out}"]
    cmd = f"{prefix} -m steps.core.bench_distributed {' '.join(shlex.quote(x) for x in args)}"
    t = time.monotonic()
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=a.timeout,
                         env={**os.environ, "PAPERZOO_RANK_LOGS": str(tmp)})
    wall = time.monotonic() - t
    if res.returncode != 0:
        return {"world": world, "global_batch": batch, "error": (res.stderr or res.stdout).strip().splitlines()[-1:]}
    ranks = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in range(world)]
    r0 = ranks[0]
    row = {"world": world, "global_batch": batch, "micro_batch": r0["micro_batch"],
           "accumulation_steps": r0["accumulation_steps"], "precision": r0["precision"], "device": r0["device"],
           "params": r0["params"], "steps_per_s": a.steps / max(r["seconds"] for r in ranks),
           "max_rss_mb": max(r["max_rss_mb"] for r in ranks), "launch_s": wall - max(r["seconds"] for r in ranks)}
    row["samples_per_s"] = row["steps_per_s"] * batch
    if "max_memory_allocated_mb" in r0:
        row["max_memory_allocated_mb"] = max(r["max_memory_allocated_mb"] for r in ranks)
        if sampler is not None:
            row.update(sampler.window(r0["t0"], r0["t1"], {r["gpu_index"] for r in ranks}))
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Add the speed-up over one process (same batch) and the scaling efficiency to each row."""
    base = {r["global_batch"]: r["samples_per_s"] for r in rows if r.get("world") == 1 and "samples_per_s" in r}
    for r in rows:
        if "samples_per_s" in r and r["global_batch"] in base:
            r["speedup"] = r["samples_per_s"] / base[r["global_batch"]]
            r["efficiency"] = r["speedup"] / r["world"]
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| processes | global batch | micro × accum | precision | steps/s | samples/s | speed-up | efficiency "
             "| max RSS MB | GPU mem MB (alloc / used) | GPU util % |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['world']} | {r['global_batch']} | failed: {' '.join(r['error'])} |||||||||")
            continue
        gpu_mem = (f"{r['max_memory_allocated_mb']:.0f} / {r.get('gpu_memory_used_max_mb', float('nan')):.0f}"
                   if "max_memory_allocated_mb" in r else "—")
        util = f"{r['gpu_util_mean_pct']:.0f}" if "gpu_util_mean_pct" in r else "—"
        lines.append(f"| {r['world']} | {r['global_batch']} | {r['micro_batch']} × {r['accumulation_steps']} | {r['precision']} "
                     f"| {r['steps_per_s']:.2f} | {r['samples_per_s']:.0f} | {r.get('speedup', float('nan')):.2f} "
                     f"| {r.get('efficiency', float('nan')):.2f} | {r['max_rss_mb']:.0f} | {gpu_mem} | {util} |")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", default=None, help="process counts, e.g. 1,2,4,8 (default: 1 and every GPU, or 1,2 on CPU)")
    ap.add_argument("--batches", default="256,1024", help="global batch sizes")
    ap.add_argument("--micro-batch", type=int, default=0, help="per process and forward pass (0: its whole share)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--precision", default="auto", choices=distributed.PRECISIONS)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--timeout", type=int, default=600, help="seconds per run")
    ap.add_argument("--out", help="JSON output (default benchmarks/distributed_<cpu|cuda>.json)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a)
        return
    import torch

    cuda = a.device != "cpu" and torch.cuda.is_available()
    n_gpu = torch.cuda.device_count() if cuda else 0
    worlds = _ints(a.worlds) if a.worlds else (sorted({1, *[w for w in (2, 4, 8) if w <= n_gpu], n_gpu}) if cuda else [1, 2])
    sampler = GpuSampler() if cuda else None
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="paperzoo-bench-dist-") as tmp:
            for batch in _ints(a.batches):
                for world in worlds:
                    row = run_one(world, batch, a, sampler, Path(tmp))
                    rows.append(row)
                    print(f"world {world}, batch {batch}: " + (f"{row['samples_per_s']:.0f} samples/s" if "samples_per_s" in row
                                                              else f"failed {row['error']}"), file=sys.stderr, flush=True)
    finally:
        if sampler is not None:
            sampler.close()
    summarize(rows)
    from steps.core.config import repo_root
    from steps.core.io import write_json

    out = Path(a.out or repo_root() / "benchmarks" / f"distributed_{'cuda' if cuda else 'cpu'}.json")
    meta = {"model": f"MLP {a.dim} → {a.hidden} × {a.depth} → {a.dim}", "steps": a.steps, "warmup": a.warmup,
            "gpus": n_gpu, "gpu_name": torch.cuda.get_device_name(0) if cuda else None, "cpu_cores": os.cpu_count()}
    write_json(out, {"meta": meta, "runs": rows})
    print(f"{meta['model']}, {a.steps} timed steps after {a.warmup} warm-up; {out}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
