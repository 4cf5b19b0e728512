"""Phase `fid50k` (full scale): one-step FID of every small 2-flow and every small student
against the CIFAR-10 training images, with Inception-v3 features (torchmetrics, the weights
fetched by the user: `eval.inception_file` under io.inception), and their parameter counts.
Same keys as the miniature's evaluation, so the same claims read both.

    python -m steps.slimflow.fid50k scale=full io.images=data/slimflow/cifar10_train.npz \
        io.inception=data/slimflow/inception io.models=models/slimflow io.results=results/slimflow
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.progress import Progress, log
from steps.instaflow.sd.scores import fid_metric
from steps.nn import rectified_flow as rf
from steps.nn.velocity import n_params
from steps.slimflow.common import DISTILL_ARMS, REFLOW_ARMS, flow_path, load_model, student_path
from steps.slimflow.images import ImageSet

ACCOUNTING = ("student",)  # params.json: fixed by the U-Net's config (steps.core.metrics.write)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    images, inception, models_dir, results_dir = need_io(cfg, "images", "inception", "models", "results")
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    ev, dev = cfg.eval, rt.device
    data = ImageSet(images)
    kind = str(ev.fid_features)
    fid = fid_metric(kind, Path(inception) / str(ev.inception_file) if kind == "inception" else None, dev)
    batch = int(ev.batch)
    for i in range(0, len(data.x), batch):  # the real statistics, once (reset() keeps them)
        fid.update(to_uint8(data.x[i:i + batch]).to(dev), real=True)
    seeds, n_gen = [int(s) for s in cfg.seeds], int(ev.n_gen)
    z_all = torch.randn(n_gen, *data.shape, generator=seeding.step_generator(int(ev.sampling_seed), "eval"))

    def score(v) -> float:
        fid.reset()
        v = v.to(dev)
        for i in range(0, n_gen, batch):
            z = z_all[i:i + batch].to(dev)
            fid.update(to_uint8(rf.one_step(v, z, torch.zeros(len(z), 0, device=dev))), real=False)
        return float(fid.compute())

    one_step: dict = {}
    params = {}
    bar = Progress(len(seeds) * (len(REFLOW_ARMS) + 1 + len(DISTILL_ARMS)), "fid50k", cfg.progress.every_s)
    for seed in seeds:
        models = {arm: load_model(flow_path(models_dir, arm, seed)) for arm in REFLOW_ARMS}
        models["rf1_small"] = load_model(flow_path(models_dir, "standard", seed), snapshot="rf1_small")
        models |= {arm: load_model(student_path(models_dir, arm, seed)) for arm in DISTILL_ARMS}
        for name, v in models.items():
            one_step.setdefault(name, []).append(score(v))
            bar.update(1)
        params["student"] = n_params(models["fgd"])
    bar.close()
    values = {"one_step": {k: metrics.summary(v) for k, v in one_step.items()}}
    common = dict(wall_time_s=time.monotonic() - t0, device=rt.description)
    name = "FID (Inception-v3 features)" if kind == "inception" else f"FID ({kind} features)"
    metrics.write(Path(results_dir) / "fid.json", cfg, "fid",
                  f"{name}: {n_gen} one-step samples vs the {len(data.x)} CIFAR-10 training images; mean ± std over training seeds",
                  values, extra={"n_gen": n_gen}, **common)
    metrics.write(Path(results_dir) / "params.json", cfg, "params", "Parameters of the small student", params,
                  accounting=ACCOUNTING, **common)
    log.info("one-step FID: " + ", ".join(f"{k} {v['mean']:.2f}" for k, v in values["one_step"].items()))
    return values


if __name__ == "__main__":
    run(main, "slimflow", "fid50k")
