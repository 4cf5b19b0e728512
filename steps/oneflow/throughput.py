"""Phase `throughput`: training throughput of our runtime against PyTorch's own parallel training
(the paper's abstract: OneFlow "outperforms many well-known customized libraries"), per
placement, on the same gloo processes, the same MLP, weights, batches and SGD (steps.oneflow.arms):

  dp  ours: SBP (x S(0), weights B)          torch: DistributedDataParallel
  tp  ours: SBP (W1 S(1), W2 S(0))           torch: DTensor ColwiseParallel / RowwiseParallel
  pp  ours: actor runtime (m, quota q)       torch: pipelining ScheduleGPipe and Schedule1F1B

Each (repeat, arm) block builds the arm from the initial weights, runs `warmup` untimed steps,
then times `steps` steps between two barriers: samples/s = batch · steps / the slowest rank's
time. The arms run in a rotated order in every repeat, so a change of machine load hits every
arm alike; the ratios ours / torch are paired within a repeat. After the last repeat every arm's
parameters are gathered: ours and torch's must agree (both compute the same training).

    python -m steps.oneflow.throughput scale=mini io.metrics=results/oneflow/throughput.json
"""

from __future__ import annotations

import importlib
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from steps.core import metrics, spawn
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import Progress, log
from steps.oneflow import arms, common, mlp
from steps.oneflow.armset import ARMS, arm_names


def rotated(names: list[str], repeat: int) -> list[str]:
    """The order of the arms in one repeat: the list rotated by the repeat's index."""
    k = repeat % len(names)
    return names[k:] + names[:k]


def build(name: str, rank: int, world: int, data: arms.Data, init, spec: dict):
    """One arm, from the initial weights (see steps.oneflow.arms)."""
    lr, pp = spec["lr"], spec["pp"]
    if name in ("ours_dp", "ours_tp"):
        return arms.OursSbp(rank, world, data, init, spec["placements"][name[len("ours_"):]], lr)
    if name == "ours_pp":
        return arms.OursPipeline(rank, world, data, init, spec["hidden"], pp["micro_batches"], pp["quota"], lr)
    if name == "ddp":
        return arms.TorchDdp(rank, world, data, init, lr)
    if name == "torch_tp":
        return arms.TorchTp(rank, world, data, init, lr)
    if name.startswith("torch_pp_"):
        return arms.TorchPipeline(rank, world, data, init, pp["micro_batches"], name[len("torch_pp_"):], lr)
    raise ConfigError(f"unknown arm {name!r}")


def worker(rank: int, world: int, X, Y, spec: dict, every_s: float) -> dict:
    data = arms.Data(X, Y, spec["seed"], spec["batch"])
    init = mlp.init_params(spec["hidden"], spec["seed"])
    names, reps, warm, steps = arm_names(spec["placements_run"]), spec["repeats"], spec["warmup"], spec["steps"]
    times: dict[str, list[float]] = {n: [] for n in names}
    params: dict[str, dict] = {}
    prog = Progress(reps * len(names), "throughput blocks", every_s=every_s) if rank == 0 else None
    for r in range(reps):
        for name in rotated(names, r):
            arm = build(name, rank, world, data, init, spec)
            for i in range(warm):
                arm.step(i)
            dist.barrier()
            t0 = time.perf_counter()
            for i in range(warm, warm + steps):
                arm.step(i)
            dist.barrier()
            times[name].append(time.perf_counter() - t0)
            if r == reps - 1:
                params[name] = arm.params()  # gathered outside the timed steps
            del arm
            if prog:
                prog.update(1, arm=name)
    if prog:
        prog.close()
    return {"times": times, "params": params}


# --------------------------------------------------------------------------- summaries (pure)

def summary(xs: list[float]) -> dict:
    """The samples of one arm and their spread."""
    return {"samples_per_s": list(xs), "median": statistics.median(xs), "mean": statistics.fmean(xs),
            "std": statistics.stdev(xs) if len(xs) > 1 else 0.0, "min": min(xs), "max": max(xs)}


def reference(tput: dict[str, list[float]], torch_arms: tuple[str, ...]) -> str:
    """PyTorch's arm to compare with: the one of higher median throughput (pp: the faster schedule)."""
    return max(torch_arms, key=lambda a: statistics.median(tput[a]))


def paired_ratio(ours: list[float], theirs: list[float]) -> dict:
    """ours / theirs within each repeat (the two ran minutes apart at most), and its spread."""
    per = [a / b for a, b in zip(ours, theirs, strict=True)]
    return {"per_repeat": per, "median": statistics.median(per), "min": min(per), "max": max(per)}


def eval_loss(p: dict[str, torch.Tensor], X, Y) -> float:
    """Mean cross-entropy of the MLP with parameters p over all digits (plain PyTorch)."""
    with torch.no_grad():
        h1 = torch.relu(X @ p["W1"] + p["b1"])
        h2 = torch.relu(h1 @ p["W2"] + p["b2"])
        return float(F.cross_entropy(h2 @ p["W3"] + p["b3"], Y))


def merged(per_rank: list[dict], name: str) -> dict[str, torch.Tensor]:
    """One arm's full parameters from the pieces the ranks returned."""
    out: dict[str, torch.Tensor] = {}
    for r in per_rank:
        out.update(r["params"][name])
    missing = set(mlp.PARAMS) - set(out)
    if missing:
        raise RuntimeError(f"arm {name}: no rank returned {sorted(missing)}")
    return out


def agreement(per_rank: list[dict], placement: str, init: dict[str, torch.Tensor], X, Y) -> dict:
    """Do ours and PyTorch's arms end with the same parameters and the same loss? The largest
    difference is set against the largest change of a parameter during training
    (`diff_over_update`), so that an arm which did not train cannot pass for one that agrees."""
    ours_name, torch_arms = ARMS[placement]
    ours = merged(per_rank, ours_name)
    loss_ours = eval_loss(ours, X, Y)
    out = {"loss_init": eval_loss(init, X, Y), "loss_ours": loss_ours, "loss_torch": {}, "max_abs_diff": 0.0,
           "max_abs_update": mlp.max_abs_diff(ours, init), "loss_rel_diff": 0.0}
    for a in torch_arms:
        theirs = merged(per_rank, a)
        loss = eval_loss(theirs, X, Y)
        out["loss_torch"][a] = loss
        out["max_abs_diff"] = max(out["max_abs_diff"], mlp.max_abs_diff(ours, theirs))
        out["loss_rel_diff"] = max(out["loss_rel_diff"], abs(loss - loss_ours) / abs(loss_ours))
    out["diff_over_update"] = out["max_abs_diff"] / max(out["max_abs_update"], 1e-30)  # no update: huge
    return out


def spec_of(cfg: DictConfig) -> dict:
    tc = cfg.throughput
    placements = [str(p) for p in tc.placements]
    bad = [p for p in placements if p not in ARMS]
    if bad:
        raise ConfigError(f"throughput.placements: unknown {bad}; known: {', '.join(ARMS)}")
    return {"seed": int(cfg.model.seed), "batch": int(tc.batch), "hidden": int(tc.hidden), "lr": float(tc.lr),
            "steps": int(tc.steps), "warmup": int(tc.warmup), "repeats": int(tc.repeats),
            "placements_run": placements, "pp": {"micro_batches": int(tc.pp.micro_batches), "quota": int(tc.pp.quota)},
            "placements": {p: OmegaConf.to_container(cfg.placements[p], resolve=True) for p in ("dp", "tp")}}


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "metrics")
    t0 = time.monotonic()
    common.setup(cfg)
    world, spec = int(cfg.group.world), spec_of(cfg)
    # The workers are forked: import what PyTorch's arms need once, here, not once per worker.
    # DistributedDataParallel's constructor imports torch._dynamo (≈ 2 s of CPU when idle).
    for placement, modules in (("dp", ("torch.nn.parallel", "torch._dynamo")),
                               ("tp", ("torch.distributed.tensor.parallel", "torch._dynamo")),
                               ("pp", ("torch.distributed.pipelining", "torch._dynamo"))):
        if placement in spec["placements_run"]:
            for module in modules:
                importlib.import_module(module)
    X, Y = mlp.digits()
    names = arm_names(spec["placements_run"])
    load_start = os.getloadavg()
    log.info(f"throughput: {world} processes, B={spec['batch']}, H={spec['hidden']}, {spec['repeats']} repeats × "
             f"{spec['steps']} timed steps (+{spec['warmup']} warm-up) per arm; arms {names}; load {load_start}")
    res = spawn.run_group(worker, world, (X, Y, spec, float(cfg.progress.every_s)), cfg, float(cfg.group.timeout_s))
    load_end = os.getloadavg()
    samples = spec["batch"] * spec["steps"]
    tput = {n: [samples / max(r["times"][n][k] for r in res) for k in range(spec["repeats"])] for n in names}
    init = mlp.init_params(spec["hidden"], spec["seed"])
    refs, ratio, same = {}, {}, {}
    for p in spec["placements_run"]:
        ours_name, torch_arms = ARMS[p]
        refs[p] = reference(tput, torch_arms)
        ratio[p] = paired_ratio(tput[ours_name], tput[refs[p]])
        same[p] = agreement(res, p, init, X, Y)
    values = {"arms": {n: summary(v) for n, v in tput.items()}, "ratio": ratio, "same": same,
              "same_max_abs_diff": max(s["max_abs_diff"] for s in same.values()),
              "same_max_diff_over_update": max(s["diff_over_update"] for s in same.values()),
              "same_max_loss_rel_diff": max(s["loss_rel_diff"] for s in same.values())}
    extra = {"reference_arm": refs, "order_repeat0": rotated(names, 0), "load_avg_1_5_15": {"start": list(load_start),
             "end": list(load_end)}, "cpus": os.cpu_count(), "nondeterministic": ["arms", "ratio"],
             "settings": {k: spec[k] for k in ("batch", "hidden", "steps", "warmup", "repeats", "lr", "pp")}}
    metrics.write(out, cfg, "throughput", f"Training throughput (samples/s) of our runtime and PyTorch's own DDP, "
                  f"DTensor TP and pipelining on the same {world} gloo processes; ratios ours / torch per repeat",
                  values, time.monotonic() - t0, f"cpu, {world} gloo processes, {os.cpu_count()} cores", extra=extra)
    log.info("throughput: " + "; ".join(f"{p} ours/{refs[p]} median {ratio[p]['median']:.2f} "
                                        f"[{ratio[p]['min']:.2f}, {ratio[p]['max']:.2f}]" for p in ratio)
             + f"; arms agree to {values['same_max_abs_diff']:.1e} (params), load {load_start} -> {load_end}")
    return values


if __name__ == "__main__":
    run(main, "oneflow", "throughput")
