"""Phase `evaluate`: TextAtlasEval-mini for the generators, every arm with every training seed.
Each renders the eval prompts (the three dense domains, the long-text prompts, and the short-text
eval) with the Euler sampler of steps.nn.rectified_flow from the same noise; OCR-mini reads the
result at the prompt's line slots and the official metrics score it (word accuracy, F1, CER).
Per arm, every metric is averaged over the seeds with its spread (`<metric>_std`, sample
standard deviation; `_min`, `_max`); `per_seed` keeps each seed's numbers. Also "FID (OCR-mini
features)": the Fréchet distance between OCR-mini's pooled line features of generated and real
eval lines (not Inception FID), averaged over seeds.

    python -m steps.textatlas5m.evaluate scale=mini io.eval=data/textatlas5m/eval.npz \
        io.ocr=models/textatlas5m/ocr.pt io.models=models/textatlas5m \
        io.out=results/textatlas5m/generation.json io.samples=results/textatlas5m/samples.npz
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import metrics, runtime
from steps.core.cli import need_io, run
from steps.core.io import load_npz, save_npz
from steps.core.progress import Progress, log
from steps.nn import rectified_flow as rf
from steps.nn.fid import fid
from steps.textatlas5m import gen_train, ocr_metrics, synth
from steps.textatlas5m.ocr_train import load as load_ocr
from steps.textatlas5m.ocr_validate import ocr_images

SCORES = ("word_acc", "precision", "f1", "cer")


@torch.no_grad()
def line_features(model, crops: np.ndarray) -> np.ndarray:
    """OCR-mini's sequence features averaged over the width: one vector per line."""
    x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).unsqueeze(1)
    return model.features(x).mean(1).numpy()


def eval_subset(ev: dict, per_domain: int) -> np.ndarray:
    """The first `per_domain` eval cases of every domain (indices into the eval set)."""
    return np.concatenate([np.nonzero(ev["domain"] == d)[0][:per_domain] for d in synth.DOMAINS])


def score_domains(texts: np.ndarray, domains: np.ndarray, preds: list[str], thr: int) -> dict:
    """The official scores per domain and pooled over the dense domains ("dense")."""
    res = {}
    for name, m in [(d, domains == d) for d in synth.DOMAINS] + [("dense", np.isin(domains, synth.DENSE))]:
        res[name] = ocr_metrics.score([str(t) for t in texts[m]], [p for p, k in zip(preds, m, strict=True) if k], thr)
    return res


def over_seeds(per_seed: dict) -> dict:
    """{seed: {domain: scores}} → {domain: {metric: mean, metric_std, metric_min, metric_max}}
    for the official scores; the std is the sample standard deviation (0 for one seed)."""
    seeds = list(per_seed)
    out = {}
    for dom in per_seed[seeds[0]]:
        out[dom] = {}
        for k in SCORES:
            v = np.array([per_seed[s][dom][k] for s in seeds], dtype=float)
            out[dom] |= {k: float(v.mean()), f"{k}_std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                         f"{k}_min": float(v.min()), f"{k}_max": float(v.max())}
    return out


def main(cfg: DictConfig) -> dict:
    eval_path, ocr_path, models_dir, out, samples_out = need_io(cfg, "eval", "ocr", "models", "out", "samples")
    t0 = time.monotonic()
    rt = runtime.start(cfg, int(cfg.eval.sample_seed))
    ev = load_npz(eval_path, "TextAtlasEval-mini")
    ocr, cs = load_ocr(ocr_path, cfg)
    idx = eval_subset(ev, int(cfg.eval.per_domain))
    sub = {k: v[idx] for k, v in ev.items()}
    prompts = gen_train.condition(cfg, sub["lines"], sub["slots"])
    g = torch.Generator().manual_seed(int(cfg.eval.sample_seed))
    z = torch.randn(len(idx), 1, int(cfg.data.height), int(cfg.data.width), generator=g)  # same noise for every model
    h, w = int(cfg.data.line_height), int(cfg.data.line_width)
    real_crops, _, _ = synth.line_crops(sub["images"], sub["slots"], sub["lines"], h, w)
    real_feat = line_features(ocr, real_crops)
    thr = int(cfg.ocr.fuzzy_threshold)
    arms, seeds = list(cfg.gen.arms), [int(s) for s in cfg.seeds]
    values: dict = {"ocr": {}, "per_seed": {}, "fid_ocr_features": {}, "seeds": seeds,
                    "n_per_domain": int(cfg.eval.per_domain), "euler_steps": int(cfg.eval.euler_steps),
                    "guidance": float(cfg.eval.guidance)}
    samples = {"images_real": sub["images"], "domain": sub["domain"], "text": sub["text"], "seed": np.array(seeds[0])}
    prog = Progress(len(arms) * len(seeds) * len(idx), "evaluate", cfg.progress.every_s)
    null = torch.zeros_like(prompts[:1])
    for arm in arms:
        per_seed, fids = {}, []
        for seed in seeds:
            model, _meta = gen_train.load(os.path.join(models_dir, f"gen_{arm}_s{seed}.pt"), cfg)
            outs = []
            for i in range(0, len(idx), 200):
                outs.append(rf.euler(model, z[i:i + 200], prompts[i:i + 200], int(cfg.eval.euler_steps),
                                     float(cfg.eval.guidance), null))
                prog.update(len(outs[-1]))
            imgs = gen_train.to_images(torch.cat(outs))
            preds = ocr_images(ocr, cs, imgs, sub["slots"], sub["lines"], cfg)
            per_seed[f"s{seed}"] = score_domains(sub["text"], sub["domain"], preds, thr)
            gen_crops, _, _ = synth.line_crops(imgs, sub["slots"], sub["lines"], h, w)
            fids.append(fid(line_features(ocr, gen_crops), real_feat))
            if seed == seeds[0]:
                samples[f"images_{arm}"] = imgs
                samples[f"pred_{arm}"] = np.array(preds, dtype="<U200")
            r = per_seed[f"s{seed}"]
            log.info(f"{arm} seed {seed}: F1 " + ", ".join(f"{d} {r[d]['f1']:.3f}" for d in (*synth.DOMAINS, "dense"))
                     + f"; FID (OCR-mini features) {fids[-1]:.2f}")
        values["per_seed"][arm] = per_seed
        values["ocr"][arm] = over_seeds(per_seed)
        values["fid_ocr_features"][arm] = float(np.mean(fids))
    prog.close()
    save_npz(samples_out, **samples)
    metrics.write(out, cfg, "generation",
                  "Generators trained on short text vs TextAtlas-mini (same model, init, steps and batch; every seed), "
                  "scored on TextAtlasEval-mini by OCR-mini (official word accuracy / F1 / CER; mean over seeds with "
                  "_std, _min, _max) and FID (OCR-mini features)",
                  values, time.monotonic() - t0, rt.description)
    return values


if __name__ == "__main__":
    run(main, "textatlas5m", "evaluate")
