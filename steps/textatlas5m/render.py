"""Phase `render`: TextAtlas-mini (training set, the short-text subset) and TextAtlasEval-mini
(disjoint texts, per domain), plus the rendered text lines OCR-mini learns from, and the dataset
statistics (words, characters, lines, text area per domain; the paper's Table 1/Fig. 3 kind).

    python -m steps.textatlas5m.render scale=mini io.train=data/textatlas5m/train.npz \
        io.eval=data/textatlas5m/eval.npz io.lines=data/textatlas5m/ocr_lines.npz \
        io.stats=results/textatlas5m/dataset_stats.json
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import Progress, log
from steps.textatlas5m import synth


def setup(cfg: DictConfig):
    """Fonts and vocabulary of TextAtlas-mini (shared by every phase that renders)."""
    try:
        fonts = synth.font_paths(cfg.data.font_dirs, list(cfg.data.fonts))
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    return fonts, synth.vocabulary(int(cfg.data.vocab_size), int(cfg.data.vocab_seed))


def main(cfg: DictConfig) -> dict:
    train_out, eval_out, lines_out, stats_out = need_io(cfg, "train", "eval", "lines", "stats")
    t0 = time.monotonic()
    d = cfg.data
    fonts, vocab = setup(cfg)
    seed = int(d.seed)
    prog = Progress(4 * 3, "render", cfg.progress.every_s)
    # Eval first, with its own stream; training then redraws any text the eval set holds
    # (pitfall: eval texts must never appear verbatim in training).
    ev, seen = [], set()
    for k, dom in enumerate(synth.DOMAINS):
        ev += synth.make_set(dom, int(d.n_eval[dom]), vocab, fonts, d, np.random.default_rng([seed, 1, k]))
        prog.update(1)
    seen = {s.text for s in ev}
    tr = []
    for k, dom in enumerate(synth.DOMAINS):
        tr += synth.make_set(dom, int(d.n_train[dom]), vocab, fonts, d, np.random.default_rng([seed, 2, k]), exclude=seen)
        prog.update(1)
    extra, n_lines, k = [], 0, 0
    rng = np.random.default_rng([seed, 3])
    while n_lines < int(d.n_ocr_lines):
        dom = synth.DOMAINS[k % len(synth.DOMAINS)]
        s = synth.make_set(dom, 1, vocab, fonts, d, rng, exclude=seen)[0]
        extra.append(s)
        n_lines += len(s.lines)
        k += 1
    prog.update(4)
    train, evals, ext = synth.pack(tr), synth.pack(ev), synth.pack(extra)
    h, w = int(d.line_height), int(d.line_width)
    crops_a, texts_a, _ = synth.line_crops(train["images"], train["slots"], train["lines"], h, w)
    crops_b, texts_b, _ = synth.line_crops(ext["images"], ext["slots"], ext["lines"], h, w)
    crops = np.concatenate([crops_a, crops_b])
    save_npz(train_out, **train)
    save_npz(eval_out, **evals)
    save_npz(lines_out, crops=(crops * 255).round().astype(np.uint8), texts=np.array(texts_a + texts_b, dtype="<U64"))
    prog.update(2)
    prog.close()
    stats = dataset_stats(evals, d)
    stats["n_train"] = {dom: int((train["domain"] == dom).sum()) for dom in synth.DOMAINS}
    stats["n_eval"] = {dom: int((evals["domain"] == dom).sum()) for dom in synth.DOMAINS}
    stats["n_ocr_lines"] = len(crops)
    stats["eval_texts_in_train"] = int(len(set(evals["text"].tolist()) & set(train["text"].tolist())))
    metrics.write(stats_out, cfg, "dataset_stats",
                  "TextAtlas-mini statistics per domain on TextAtlasEval-mini (words, characters, lines, text area)",
                  stats, time.monotonic() - t0, "cpu")
    log.info(f"rendered {len(tr)} training, {len(ev)} eval images, {len(crops)} OCR lines")
    return stats


def dataset_stats(arr: dict, d) -> dict:
    """Per domain: words and characters per image, lines, text-area share, mean line height (px)."""
    out = {}
    area = float(d.height) * float(d.width)
    for dom in synth.DOMAINS:
        m = arr["domain"] == dom
        texts = arr["text"][m]
        slots = arr["slots"][m].astype(float)
        valid = slots[..., 0] >= 0
        hgt = np.where(valid, slots[..., 1] - slots[..., 0], 0)
        wid = np.where(valid, slots[..., 3] - slots[..., 2], 0)
        out[dom] = {
            "words": float(np.mean([len(t.split()) for t in texts])),
            "chars": float(np.mean([len(t) for t in texts])),
            "lines": float(valid.sum(1).mean()),
            "text_area": float(((hgt * wid).sum(1) / area).mean()),
            "line_height_px": float(hgt[valid].mean()),
        }
    return out


if __name__ == "__main__":
    run(main, "textatlas5m", "render")
