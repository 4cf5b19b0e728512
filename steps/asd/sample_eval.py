"""Phase `sample_eval`: sample every stage-1 arm on every canvas bucket and measure composition
(spec "Mini reproduction"; the paper's Fig. 1 failures, counted):

* object-count error rate: canvases whose bright components above the band are not exactly one;
* cropped-object rate: canvases with an object touching the canvas border;
* prompt accuracy: InstaFlow's digits classifier reads the largest object as the prompted digit;
* FID (digits-classifier features) of the object crops against all real digits.

Arms: `square` (trained on 16×16 only, sampled at every size, as SD 2.1 is), `arad` (bucketed
multi-ratio training), `square_tiled` (the square model on overlapping 16×16 tiles averaged per
step, MultiDiffusion-like), and `real` (the real scenes: the floor every metric is read against).
The same noises and prompts for every arm.

    python -m steps.asd.sample_eval scale=mini io.buckets=data/asd/buckets.npz io.square=models/asd/gen_square.pt \
        io.arad=models/asd/gen_arad.pt io.fid_clf=models/instaflow/fid_clf.pt \
        io.out=results/asd/composition.json io.samples=results/asd/samples.npz
"""

from __future__ import annotations

import time

import numpy as np
import torch
from omegaconf import DictConfig

from steps.asd import common, scenes
from steps.core import metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import save_npz
from steps.core.progress import Progress, log
from steps.data import digits
from steps.instaflow.fid_features import load_classifier
from steps.nn import fid as fidlib
from steps.nn import rectified_flow as rf
from steps.nn import tiled_flow

GEN_ARMS = ("square", "arad", "square_tiled")
KEYS = ("count_error", "cropped", "prompt_acc", "fid")
GRID_N = 10  # samples per arm × bucket kept for the figures: prompts 0..9


def generate(model, arm: str, z: torch.Tensor, c: torch.Tensor, cfg: DictConfig) -> torch.Tensor:
    s = cfg.sample
    null = torch.zeros(1, c.shape[1])
    if arm == "square_tiled":
        v = rf.guided(model, float(s.guidance), null)
        x, _ = tiled_flow.sample(v, z, c, int(s.euler_steps), "overlap", int(s.tile), stride=int(s.stride), weighting="uniform")
        return x
    return rf.euler(model, z, c, int(s.euler_steps), float(s.guidance), null)


def measure(images: np.ndarray, labels: np.ndarray, clf, real_feat: np.ndarray, cfg: DictConfig) -> dict:
    comp = scenes.composition(images, cfg.scenes, cfg.composition)
    with torch.no_grad():
        crops = torch.from_numpy(comp["crops"])
        pred = clf(crops).argmax(1).numpy()
        feat = clf.features(crops).numpy()
    return {"count_error": float(np.mean(comp["count"] != 1)), "cropped": float(np.mean(comp["cropped"])),
            "prompt_acc": float(np.mean((pred == labels) & (comp["count"] >= 1))), "fid": fidlib.fid(feat, real_feat),
            "mean_count": float(np.mean(comp["count"]))}


def main(cfg: DictConfig) -> dict:
    buckets_path, sq_path, arad_path, clf_path, out, samples_out = need_io(
        cfg, "buckets", "square", "arad", "fid_clf", "out", "samples")
    t0 = time.monotonic()
    rt = runtime.start(cfg, int(cfg.sample.seed))
    data = common.Buckets(buckets_path)
    models = {"square": common.load(sq_path, "square-only generator")[0], "arad": common.load(arad_path, "ARAD generator")[0]}
    models["square_tiled"] = models["square"]
    clf, _ = load_classifier(clf_path)
    real_x, _ = digits.load()
    with torch.no_grad():
        real_feat = clf.features(torch.from_numpy(real_x)).numpy()
    n, bs = int(cfg.sample.n_per_bucket), int(cfg.sample.batch)
    labels = np.arange(n) % 10
    square = scenes.bucket_name(*(int(v) for v in cfg.data.square))
    values: dict = {a: {} for a in ("real", *GEN_ARMS)}
    grids = {}
    prog = Progress(len(data.names) * len(GEN_ARMS), "sample_eval", cfg.progress.every_s)
    for b in data.names:
        h, w = scenes.parse_bucket(b)
        xr, yr = data.x[b][:n].numpy(), data.y[b][:n].numpy()
        values["real"][b] = measure(xr, yr, clf, real_feat, cfg)
        g = seeding.step_generator(int(cfg.sample.seed), f"sample_{b}", 0)
        z = torch.randn(n, 1, h, w, generator=g)  # the same noises and prompts for every arm
        c = common.one_hot(torch.from_numpy(labels))
        for arm in GEN_ARMS:
            x = torch.cat([generate(models[arm], arm, z[i:i + bs], c[i:i + bs], cfg) for i in range(0, n, bs)]).numpy()
            values[arm][b] = measure(x, labels, clf, real_feat, cfg)
            grids[f"grid_{arm}_{b}"] = x[:GRID_N, 0]
            prog.update(1, arm=arm, bucket=b, count_error=round(values[arm][b]["count_error"], 3))
        grids[f"grid_real_{b}"] = xr[:GRID_N, 0]
    prog.close()
    others = [b for b in data.names if b != square]
    for per in values.values():
        if others:
            per["non_square"] = {k: float(np.mean([per[b][k] for b in others])) for k in KEYS}
    save_npz(samples_out, **grids)
    metrics.write(out, cfg, "composition",
                  "Composition per canvas bucket: object-count error, cropped-object rate, prompt accuracy and "
                  "FID (digits-classifier features) of object crops, per arm (square-only, ARAD, square + tiles, real)",
                  values, time.monotonic() - t0, rt.description,
                  extra={"n_per_bucket": n, "euler_steps": int(cfg.sample.euler_steps),
                         "buckets": {"square": square, "non_square": others}})
    for arm in GEN_ARMS:
        if others:
            ns = values[arm]["non_square"]
            log.info(f"{arm}: non-square count error {ns['count_error']:.3f}, cropped {ns['cropped']:.3f}, "
                     f"prompt acc {ns['prompt_acc']:.3f}, FID {ns['fid']:.2f}")
    return values


if __name__ == "__main__":
    run(main, "asd", "sample_eval")
