"""Phase `evaluate`: TextAtlasEval-mini for the two generators — each renders every eval prompt
(per domain and the short-text eval) with the Euler sampler of steps.nn.rectified_flow, OCR-mini
reads the result at the prompt's line slots, and the official metrics score it (word accuracy,
F1, CER). Also "FID (OCR-mini features)": the Fréchet distance between OCR-mini's pooled line
features of generated and real eval lines (not Inception FID).

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
from steps.nn.char_cross_dit import encode_prompts
from steps.nn.fid import fid
from steps.textatlas5m import gen_train, ocr_metrics, synth
from steps.textatlas5m.ocr_train import load as load_ocr
from steps.textatlas5m.ocr_validate import ocr_images


@torch.no_grad()
def line_features(model, crops: np.ndarray) -> np.ndarray:
    """OCR-mini's sequence features averaged over the width: one vector per line."""
    x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).unsqueeze(1)
    return model.features(x).mean(1).numpy()


def eval_subset(ev: dict, per_domain: int) -> np.ndarray:
    """The first `per_domain` eval cases of every domain (indices into the eval set)."""
    return np.concatenate([np.nonzero(ev["domain"] == d)[0][:per_domain] for d in synth.DOMAINS])


def main(cfg: DictConfig) -> dict:
    eval_path, ocr_path, models_dir, out, samples_out = need_io(cfg, "eval", "ocr", "models", "out", "samples")
    t0 = time.monotonic()
    rt = runtime.start(cfg, int(cfg.eval.sample_seed))
    ev = load_npz(eval_path, "TextAtlasEval-mini")
    ocr, cs = load_ocr(ocr_path, cfg)
    idx = eval_subset(ev, int(cfg.eval.per_domain))
    sub = {k: v[idx] for k, v in ev.items()}
    prompts = encode_prompts(sub["lines"].tolist(), gen_train.CHARSET, int(cfg.gen.max_chars))
    g = torch.Generator().manual_seed(int(cfg.eval.sample_seed))
    z = torch.randn(len(idx), 1, int(cfg.data.height), int(cfg.data.width), generator=g)  # same noise for both arms
    h, w = int(cfg.data.line_height), int(cfg.data.line_width)
    real_crops, _, _ = synth.line_crops(sub["images"], sub["slots"], sub["lines"], h, w)
    real_feat = line_features(ocr, real_crops)
    thr = int(cfg.ocr.fuzzy_threshold)
    values: dict = {"ocr": {}, "fid_ocr_features": {}, "n_per_domain": int(cfg.eval.per_domain),
                    "euler_steps": int(cfg.eval.euler_steps), "guidance": float(cfg.eval.guidance)}
    samples = {"images_real": sub["images"], "domain": sub["domain"], "text": sub["text"]}
    arms = list(cfg.gen.arms)
    prog = Progress(len(arms) * len(idx), "evaluate", cfg.progress.every_s)
    null = torch.zeros_like(prompts[:1])
    for arm in arms:
        model, _meta = gen_train.load(os.path.join(models_dir, f"gen_{arm}.pt"), cfg)
        outs = []
        for i in range(0, len(idx), 200):
            outs.append(rf.euler(model, z[i:i + 200], prompts[i:i + 200], int(cfg.eval.euler_steps),
                                 float(cfg.eval.guidance), null))
            prog.update(len(outs[-1]))
        imgs = gen_train.to_images(torch.cat(outs))
        samples[f"images_{arm}"] = imgs
        preds = ocr_images(ocr, cs, imgs, sub["slots"], sub["lines"], cfg)
        res = {}
        for dom in synth.DOMAINS:
            m = sub["domain"] == dom
            res[dom] = ocr_metrics.score([str(t) for t in sub["text"][m]], [p for p, k in zip(preds, m, strict=True) if k], thr)
        dm = np.isin(sub["domain"], synth.DENSE)
        res["dense"] = ocr_metrics.score([str(t) for t in sub["text"][dm]], [p for p, k in zip(preds, dm, strict=True) if k], thr)
        values["ocr"][arm] = res
        gen_crops, _, _ = synth.line_crops(imgs, sub["slots"], sub["lines"], h, w)
        values["fid_ocr_features"][arm] = fid(line_features(ocr, gen_crops), real_feat)
        samples[f"pred_{arm}"] = np.array(preds, dtype="<U200")
        log.info(f"{arm}: F1 " + ", ".join(f"{d} {res[d]['f1']:.3f}" for d in (*synth.DOMAINS, "dense"))
                 + f"; FID (OCR-mini features) {values['fid_ocr_features'][arm]:.2f}")
    prog.close()
    save_npz(samples_out, **samples)
    metrics.write(out, cfg, "generation",
                  "Generators trained on short text vs TextAtlas-mini, scored on TextAtlasEval-mini by OCR-mini "
                  "(official word accuracy / F1 / CER) and FID (OCR-mini features)",
                  values, time.monotonic() - t0, rt.description)
    return values


if __name__ == "__main__":
    run(main, "textatlas5m", "evaluate")
