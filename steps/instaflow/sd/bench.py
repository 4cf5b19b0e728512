"""InstaFlow's full-scale phases timed on one device through their own code, on randomly
initialised models of Stable Diffusion 1.5's size (steps.instaflow.sd.arch; `tiny` for tests):

* pairs: one teacher batch (pairs.batch prompts) of pairs.sampler with the SD teacher
  (DPM-Solver, pairs.ode_steps, guidance pairs.guidance) and the 2-RF teacher (Euler);
* reflow and distill: steps of train.fit with reflow.reflow_loss, distill.distill_loss (L2 and
  LPIPS stages) and distill's EMA hook, the optimizer, precision, gradient checkpointing and
  micro-batch of params/instaflow/full.yaml, at the stage's own batch (reflow's first stage: 64 =
  2 micro-batches of 32) or, where that is more than `accumulation` micro-batches (the batches of
  1024: 32 of them on one GPU, too long to time several steps), at `accumulation` micro-batches;
  what differs at the real batch is only how many micro-batches share one optimizer step.

Each measurement runs `warmup` untimed steps, then `steps` timed ones (CUDA synchronised), and
records seconds per step, samples per second and the peak GPU memory of the timed steps.
`cost_rows` turns the rates into GPU-days for full.yaml's schedule beside the paper's reported
costs (params/instaflow/claims.yaml). Called by `python -m steps.core.gpu_check` (parts c, d).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from steps.core import claims, distributed, runtime, seeding
from steps.core.checkpoint import Snapshots
from steps.core.config import params_dir
from steps.core.io import save_npz, save_parquet
from steps.instaflow.sd import arch, data, distill, models, pairs, reflow, train
from steps.nn import lpips as lpipslib

DAY_S = 86400.0


class Timer:
    """Call at the end of step i (0-based): steps 0 … warmup−1 are not timed; the peak memory
    counter restarts when they are done."""

    def __init__(self, device: torch.device, warmup: int):
        if warmup < 1:
            raise ValueError("warmup must be ≥ 1 (the first timed step starts where a warm-up step ends)")
        self.device, self.warmup, self.laps, self._last = device, warmup, [], None

    def __call__(self, i: int) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if i >= self.warmup:
            self.laps.append(now - self._last)
        elif i == self.warmup - 1 and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._last = now

    def result(self, per_step: int) -> dict:
        out = {"seconds_per_step": self.laps, "per_s": per_step * len(self.laps) / sum(self.laps)}
        if self.device.type == "cuda":
            out["peak_mem_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            out["peak_reserved_gib"] = torch.cuda.max_memory_reserved(self.device) / 2**30
        return out


@dataclass
class Bench:
    cfg: DictConfig
    arch: str
    rt: runtime.Runtime
    sd: models.SD
    text: models.TextEncoder
    prompts: data.Prompts
    store: data.PairStore
    work: Path
    warmup: int
    steps: int
    pair_batches: int
    accumulation: int  # at most this many micro-batches a timed step

    @property
    def dev(self) -> torch.device:
        return self.rt.device


def setup(cfg: DictConfig, arch_name: str, work, warmup: int, steps: int, pair_batches: int = 2,
          accumulation: int = 2, n_pairs: int = 128) -> Bench:
    """Random models of `arch_name` (arch.ARCHS) on cfg.device, n_pairs random prompts and pairs
    (two shards); training timed over `steps` steps, sampling over `pair_batches` batches, each
    after `warmup` untimed ones, training at most `accumulation` micro-batches a step."""
    work = Path(work)
    rt = runtime.start(cfg, int(cfg.seed))
    sd = arch.random_sd(arch.ARCHS[arch_name], work, int(cfg.seed), rt.device)
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, rt.device)
    save_parquet(work / "prompts.parquet", pd.DataFrame({"id": np.arange(n_pairs),
                                                          "text": [f"a photograph of thing {i}" for i in range(n_pairs)]}))
    shape = data.latent_shape(int(cfg.pairs.resolution))
    rng = np.random.default_rng(0)
    shards = []
    for k, (a, b) in enumerate(((0, n_pairs // 2), (n_pairs // 2, n_pairs))):
        shards.append(pairs.shard_path(work / "pairs", k))
        save_npz(shards[-1], x1=rng.standard_normal((b - a, *shape)).astype(np.float16), index=np.arange(a, b))
    return Bench(cfg, arch_name, rt, sd, text, data.Prompts(work / "prompts.parquet"), data.PairStore(shards), work,
                 warmup, steps, pair_batches, accumulation)


def time_pairs(b: Bench, teacher: str) -> dict:
    """Pairs per second of pairs.sampler with `teacher` (sd | rf2) at pairs.batch."""
    cfg = OmegaConf.merge(b.cfg, {"pairs": {"teacher": teacher}})
    unet = b.sd.unet.eval()
    sample = pairs.sampler(cfg, pairs.teacher_fn(cfg, b.sd, b.dev, unet=unet), b.text, b.prompts, b.dev)
    batch, timer = int(cfg.pairs.batch), Timer(b.dev, b.warmup)
    finite = True
    for i in range(b.warmup + b.pair_batches):
        x = sample([(i * batch + k) % len(b.prompts) for k in range(batch)])
        finite = finite and bool(torch.isfinite(x).all())  # the pairs step checks every batch too
        timer(i)
    p = cfg.pairs
    steps = p.ode_steps if teacher == "sd" else p.rf2.ode_steps
    guidance = p.guidance if teacher == "sd" else p.rf2.guidance
    return {"what": f"pairs, {teacher} teacher: {steps} steps, guidance {guidance}", "batch": batch,
            "precision": distributed.precision("auto", b.dev), "finite": finite, "unit": "pairs",
            **timer.result(batch)}


def first_linear(module: torch.nn.Module) -> torch.nn.Linear:
    return next(m for m in module.modules() if isinstance(m, torch.nn.Linear))


def time_training(b: Bench, section: str, stage: dict, unet: torch.nn.Module, loss_fn, after_step=None,
                  **objects) -> dict:
    """Samples per second of train.fit over `section`'s settings with one stage like `stage`,
    shortened to warmup + steps steps of at most `accumulation` micro-batches."""
    sec = b.cfg[section]
    micro = int(stage.get("micro_batch", sec.micro_batch))
    accumulation = max(1, min(int(stage["batch"]) // micro, b.accumulation))
    batch = accumulation * micro
    short = OmegaConf.merge(sec, {"stages": [{**stage, "batch": batch, "steps": b.warmup + b.steps}]})
    timer, dtypes = Timer(b.dev, b.warmup), set()
    hook = first_linear(unet).register_forward_hook(lambda m, i, o: dtypes.add(str(o.dtype).removeprefix("torch.")))

    def after(step):
        if after_step is not None:
            after_step(step)
        timer(step)

    name = f"{section}_{stage.get('loss', 'rf')}"
    try:
        loop = train.fit(b.cfg, short, unet, b.work / f"{name}.pt", name, loss_fn, b.rt.dist, b.dev, after, **objects)
        loop.finish()
    finally:
        hook.remove()
    rec = loop.record()
    losses = rec["loss_trace"]["values"]
    return {"what": f"{section}, {stage.get('loss', 'rectified-flow')} loss", "batch": batch, "micro_batch": micro,
            "accumulation": accumulation, "params_batch": int(stage["batch"]), "precision": rec["precision"], "linear_dtypes": sorted(dtypes),
            "finite": all(math.isfinite(v) for v in losses), "unit": "samples", **timer.result(batch)}


def loss_agreement(b: Bench, loss_fn, unet: torch.nn.Module, micro: int, precision: str, rtol: float = 0.05) -> dict:
    """One micro-batch's loss (same weights, same draw) in fp32 and in `precision`, forward only."""
    prec = distributed.precision(precision, b.dev)
    values = []
    with torch.no_grad():
        for p in ("fp32", prec):
            with distributed.autocast(p, b.dev):
                values.append(float(loss_fn(unet, {}, micro, seeding.step_generator(0, "loss_agreement", 0))))
    rel = abs(values[1] - values[0]) / max(abs(values[0]), 1e-12)
    finite = all(math.isfinite(v) for v in values)
    return {"asked": precision, "resolved": prec,
            "loss_fp32": values[0], "loss": values[1], "rel_diff": rel, "rtol": rtol, "finite": finite,
            "ok": finite and rel <= rtol}


def measure(b: Bench, teachers=("sd", "rf2"), precision: str = "auto") -> tuple[dict, dict]:
    """({name: measurement}, the fp32-vs-`precision` loss row). Order: sampling first (fresh
    weights in eval mode), then reflow, then distillation, whose student is the same UNet (the
    weights are random either way) with an EMA copy, as distill.main keeps one. A measurement
    that fails (out of memory, say) is recorded as {what, error} and the others still run."""
    out: dict = {}
    for t in teachers:
        _try(out, f"pairs_{t}", b.dev, lambda t=t: time_pairs(b, t))
    unet = b.sd.unet
    rf_loss = reflow.reflow_loss(b.cfg, b.store, b.text, b.prompts, b.dev)
    row = {}
    _try(row, "agreement", b.dev, lambda: loss_agreement(b, rf_loss, unet, int(b.cfg.reflow.micro_batch), precision))
    agreement = {"phase": f"instaflow.sd.reflow ({b.arch} UNet)", "ok": False, **row["agreement"]}
    for stage in _distinct(b.cfg.reflow):
        _try(out, f"reflow_{_key(stage, b.cfg.reflow)}", b.dev, lambda st=stage: time_training(b, "reflow", st, unet, rf_loss))
    unet.zero_grad(set_to_none=True)  # reflow's last gradients: distill.main starts without any
    _free(b.dev)
    ema, snaps = copy.deepcopy(unet).requires_grad_(False).eval(), Snapshots()
    losses = distill.similarity(b.cfg, b.sd, lpipslib.build().to(b.dev))  # random AlexNet and heads: the cost, not the metric
    d_loss = distill.distill_loss(b.cfg, b.store, b.text, b.prompts, losses, b.dev)
    for stage in _distinct(b.cfg.distill):
        _try(out, f"distill_{_key(stage, b.cfg.distill)}", b.dev, lambda st=stage: time_training(
            b, "distill", st, unet, d_loss, distill.ema_hook(b.cfg, ema, unet, snaps), ema=ema, snapshots=snaps))
    return out, agreement


def _try(out: dict, name: str, dev, fn) -> None:
    try:
        out[name] = fn()
    except Exception as e:  # noqa: BLE001 -- a phase that fails here is a finding to report, not a crash
        out[name] = {"what": name, "error": f"{e.__class__.__name__}: {(str(e).splitlines() or [''])[0][:300]}"}
        _free(dev)


def _key(stage, section) -> str:
    return f"{stage.get('loss', 'rf')}_m{int(stage.get('micro_batch', section.micro_batch))}"


def _distinct(section) -> list[dict]:
    """The section's stages that differ in what a step computes (loss, micro-batch)."""
    seen, out = set(), []
    for s in train.stages_of(section):
        k = _key(s, section)
        if k not in seen:
            seen.add(k)
            out.append({k2: v for k2, v in s.items() if k2 in ("loss", "micro_batch", "name", "batch")})
    return out


def _free(dev) -> None:
    import gc

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ GPU-days

# The paper's costs (A100 GPU-days), by claims.yaml id: per reflow / distillation stage (model
# cards), data generation (by subtraction from the card's total) and the abstract's total.
PAPER_IDS = {"pairs": "training_cost_data", "reflow": ("training_cost_reflow_stage1", "training_cost_reflow_stage2"),
             "distill": ("training_cost_distill_l2", "training_cost_distill_lpips"), "total": "training_cost"}
FORMULA = "GPU-days = samples / (measured samples/s) / 86400"


def paper_costs() -> dict[str, float]:
    """{claims id: value} of InstaFlow's reported numbers."""
    return {n["id"]: n["value"] for n in claims.load(params_dir() / "instaflow" / "claims.yaml")["numbers"]}


def _row(what: str, samples: float, rate: float | None, runs: int = 1, paper: float | None = None) -> dict:
    days = samples / rate / DAY_S if rate else None
    return {"what": what, "samples": samples, "runs": runs, "per_s": rate, "gpu_days": days,
            "gpu_days_all_runs": None if days is None else days * runs, "paper_a100_days": paper,
            "paper_per_s_per_a100": samples / (paper * DAY_S) if paper else None}


def cost_rows(cfg: DictConfig, measured: dict, paper: dict) -> list[dict]:
    """GPU-days of full.yaml's schedule at the measured rates, one row per pair teacher and per
    training stage, then subtotals and totals. Stage samples = stage batch × steps; pairs =
    prompts.n_train per teacher. The paper's per-A100 rate is its samples / its GPU-days."""
    rate = {k: v.get("per_s") for k, v in measured.items()}  # None where a measurement failed
    n = float(cfg.prompts.n_train)
    rows = [_row("pairs, SD 1.5 teacher", n, rate.get("pairs_sd")), _row("pairs, 2-RF teacher", n, rate.get("pairs_rf2"))]
    data_days = _sum(rows)
    rows.append({**_row("pairs, both teachers (the paper: data generation)", 2 * n, None, 1, paper.get(PAPER_IDS["pairs"])),
                 "gpu_days": data_days, "gpu_days_all_runs": data_days, "paper_per_s_per_a100": None})
    train_rows = []
    for section, runs in (("reflow", 1), ("distill", 2)):  # distill: arms rf2 (InstaFlow) and sd (SD+Distill)
        sec = cfg[section]
        for i, st in enumerate(train.stages_of(sec)):
            ids = PAPER_IDS[section]
            label = f"{section} stage {i + 1} ({st['name']}), batch {st['batch']} × {st['steps']} steps"
            train_rows.append(_row(label, float(st["batch"]) * float(st["steps"]), rate.get(f"{section}_{_key(st, sec)}"),
                                   runs, paper.get(ids[i]) if i < len(ids) else None))
    rows += train_rows
    one_arm = _sum(rows[:2]) + sum((r["gpu_days"] or math.nan) for r in train_rows)
    rows.append({"what": "InstaFlow-0.9B: pairs + reflow + one distillation", "gpu_days": one_arm,
                 "gpu_days_all_runs": one_arm, "paper_a100_days": paper.get(PAPER_IDS["total"])})
    everything = _sum(rows[:2]) + sum((r["gpu_days_all_runs"] or math.nan) for r in train_rows)
    rows.append({"what": "the full DAG: both distillation arms (evaluation not timed)", "gpu_days": everything,
                 "gpu_days_all_runs": everything, "paper_a100_days": None})
    return rows


def _sum(rows: list[dict]) -> float:
    return sum((r["gpu_days"] if r["gpu_days"] is not None else math.nan) for r in rows)
