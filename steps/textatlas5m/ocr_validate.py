"""Phase `ocr_validate`: check OCR-mini on ground truth before trusting it (the spec's sanity
gate), then measure the benchmark's difficulty on the data itself.

1. OCR-mini on the real TextAtlasEval-mini images, per domain, with the official metrics
   (word accuracy, F1, CER); on pure noise and blank images (must score ≈ 0).
2. Difficulty: the same OCR on degraded eval images (resolution loss + noise, the kind of
   imperfection a generator's output has): dense text (small glyphs, many words) against short
   text, and domain by domain. Declared accounting (metrics.write(accounting=...)): which
   domain reads worse once degraded follows from our render settings (data.font_sizes: dense
   glyphs 9–13 px against 13–20 px for short text, halved by the ×2 resolution loss; the styled
   board's tilt and noise), not from anything the paper could be wrong about. The paper's
   claims that long text and complex layouts are hard are tested on the generators
   (steps.textatlas5m.evaluate; claims long_text_harder_for_mini_generator, levels_for_mini_generator).

Layout-slot OCR reads each line where the layout metadata says it is (no detection model): a
simplification of the paper's PaddleOCR detection + recognition, reported as such.

    python -m steps.textatlas5m.ocr_validate scale=mini io.eval=data/textatlas5m/eval.npz \
        io.ocr=models/textatlas5m/ocr.pt io.gt=results/textatlas5m/ocr_on_gt.json \
        io.difficulty=results/textatlas5m/difficulty.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics, runtime
from steps.core.cli import need_io, run
from steps.core.io import load_npz
from steps.core.progress import log
from steps.textatlas5m import ocr_metrics, synth
from steps.textatlas5m.ocr_train import load, read_lines


def ocr_images(model, cs, images: np.ndarray, slots: np.ndarray, lines: np.ndarray, cfg) -> list[str]:
    """The OCR text of each image: its line slots read and joined by spaces (in slot order)."""
    crops, _, where = synth.line_crops(images, slots, lines, int(cfg.data.line_height), int(cfg.data.line_width))
    texts = read_lines(model, cs, crops)
    out = [[] for _ in range(len(images))]
    for (i, _j), t in zip(where.tolist(), texts, strict=True):
        if t:
            out[i].append(t)
    return [" ".join(p) for p in out]


def degrade(images: np.ndarray, factor: int, noise: float, seed: int) -> np.ndarray:
    """Downsample by `factor` (area), upsample back (bilinear), add Gaussian noise; uint8 out."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if factor > 1:
        small = F.avg_pool2d(x, factor)
        x = F.interpolate(small, size=images.shape[1:], mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    x = (x + noise * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return (x.squeeze(1).numpy() * 255).round().astype(np.uint8)


def by_domain(model, cs, ev: dict, images: np.ndarray, cfg) -> dict:
    thr = int(cfg.ocr.fuzzy_threshold)
    out = {}
    for dom in synth.DOMAINS:
        m = ev["domain"] == dom
        preds = ocr_images(model, cs, images[m], ev["slots"][m], ev["lines"][m], cfg)
        out[dom] = ocr_metrics.score([str(t) for t in ev["text"][m]], preds, thr)
    dense = [out[d] for d in synth.DENSE]
    pooled_c, pooled_g, pooled_p = (sum(r[k] for r in dense) for k in ("correct_words", "gt_words", "pred_words"))
    acc, prec = pooled_c / max(1, pooled_g), pooled_c / max(1, pooled_p)
    out["dense"] = {"word_acc": acc, "precision": prec, "f1": 2 * acc * prec / (acc + prec) if acc + prec else 0.0,
                    "cer": float(np.mean([r["cer"] for r in dense]))}
    return out


def main(cfg: DictConfig) -> dict:
    eval_path, ocr_path, gt_out, diff_out = need_io(cfg, "eval", "ocr", "gt", "difficulty")
    t0 = time.monotonic()
    rt = runtime.start(cfg, int(cfg.data.seed))
    ev = load_npz(eval_path, "TextAtlasEval-mini")
    model, cs = load(ocr_path, cfg)
    gt = by_domain(model, cs, ev, ev["images"], cfg)
    # sanity: noise and blank images, scored against the real eval texts with the real slots
    n = min(int(cfg.difficulty.noise_images), len(ev["text"]))
    rng = np.random.default_rng(int(cfg.data.seed) + 17)
    idx = rng.choice(len(ev["text"]), n, replace=False)
    noise = rng.integers(0, 256, (n, *ev["images"].shape[1:])).astype(np.uint8)
    blank = np.full_like(noise, 235)
    gts = [str(t) for t in ev["text"][idx]]
    thr = int(cfg.ocr.fuzzy_threshold)
    gt["noise"] = ocr_metrics.score(gts, ocr_images(model, cs, noise, ev["slots"][idx], ev["lines"][idx], cfg), thr)
    gt["blank"] = ocr_metrics.score(gts, ocr_images(model, cs, blank, ev["slots"][idx], ev["lines"][idx], cfg), thr)
    metrics.write(gt_out, cfg, "ocr_on_gt",
                  "OCR-mini on real TextAtlasEval-mini images (official word accuracy / F1 / CER), and on noise and blank images",
                  gt, time.monotonic() - t0, rt.description)
    dcfg = cfg.difficulty
    degraded = degrade(ev["images"], int(dcfg.degrade_factor), float(dcfg.degrade_noise), int(cfg.data.seed) + 29)
    diff = by_domain(model, cs, ev, degraded, cfg)
    metrics.write(diff_out, cfg, "difficulty",
                  f"OCR-mini on degraded eval images (×{dcfg.degrade_factor} resolution loss, noise {dcfg.degrade_noise}): "
                  "dense vs short text, per domain",
                  {"degraded": diff, "degrade_factor": int(dcfg.degrade_factor), "degrade_noise": float(dcfg.degrade_noise)},
                  time.monotonic() - t0, rt.description, extra={"degraded_images": None},
                  accounting=["degraded"])   # the ordering follows from the render settings (docstring)
    for dom in (*synth.DOMAINS, "noise", "blank"):
        log.info(f"OCR-mini on {dom}: word acc {gt[dom]['word_acc']:.3f} F1 {gt[dom]['f1']:.3f} CER {gt[dom]['cer']:.3f}"
                 + (f" | degraded F1 {diff[dom]['f1']:.3f}" if dom in diff else ""))
    return {"gt": gt, "difficulty": diff}


if __name__ == "__main__":
    run(main, "textatlas5m", "ocr_validate")
