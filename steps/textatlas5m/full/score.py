"""Phase `score` (full scale, GPU): the official TextAtlasEval metrics of one model's images —
OCR word accuracy / precision / F1 (fuzzy ratio ≥ 80, greedy) and CER with PaddleOCR (English,
angle classifier; evaluation/cal_ocr.py), CLIP score against the prompt, FID against the
reference images — per subset.

`full.ocr.engine`: `paddleocr` (the paper's) or `ocr_mini:<checkpoint>` (OCR-mini reading whole
images as one line: CPU tests of this code path only).

    python -m steps.textatlas5m.full.score scale=full full.model=sd35_large \
        io.cases=data/textatlas5m/eval_cases.parquet io.images=data/textatlas5m/generated/sd35_large \
        io.clip=data/textatlas5m/clip io.inception=data/textatlas5m/inception/<file>.pth \
        io.out=results/textatlas5m/scores/sd35_large.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_parquet, write_json
from steps.core.progress import Progress
from steps.instaflow.sd.scores import ClipScore, fid_metric, load_images
from steps.textatlas5m import ocr_metrics


class PaddleReader:
    """PaddleOCR as the official script calls it: lines' texts joined by spaces."""

    def __init__(self, use_gpu: bool):
        from paddleocr import PaddleOCR

        self.ocr = PaddleOCR(use_angle_cls=True, lang="en", show_log=False, use_gpu=use_gpu)

    def __call__(self, path: str) -> str:
        res = self.ocr.ocr(path, cls=True)
        if not res or not res[0]:
            return ""
        return " ".join(line[1][0].strip() for line in res[0] if line[1][0])


class MiniReader:
    """OCR-mini on the whole image resized to one line (a test stand-in, not a benchmark OCR)."""

    def __init__(self, ckpt: str, cfg: DictConfig):
        from steps.textatlas5m.ocr_train import load

        self.model, self.cs = load(ckpt, cfg)
        self.h, self.w = int(cfg.data.line_height), int(cfg.data.line_width)

    def __call__(self, path: str) -> str:
        from PIL import Image

        from steps.textatlas5m.ocr_train import read_lines

        with Image.open(path) as im:
            x = np.asarray(im.convert("L").resize((self.w, self.h)), np.float32) / 255.0
        return read_lines(self.model, self.cs, x[None])[0]


def reader(engine: str, cfg: DictConfig, use_gpu: bool):
    if engine == "paddleocr":
        return PaddleReader(use_gpu)
    if engine.startswith("ocr_mini:"):
        return MiniReader(engine.split(":", 1)[1], cfg)
    raise ConfigError(f"full.ocr.engine must be paddleocr or ocr_mini:<checkpoint>, got {engine!r}")


def main(cfg: DictConfig) -> dict:
    cases_path, images_dir, clip_dir, inception, out = need_io(cfg, "cases", "images", "clip", "inception", "out")
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    cases = load_parquet(cases_path, "TextAtlasEval cases").to_dict("records")
    read = reader(str(cfg.full.ocr.engine), cfg, rt.device.type == "cuda")
    clip = ClipScore(clip_dir, rt.device)
    thr = int(cfg.full.ocr.fuzzy_threshold)
    res: dict = {}
    subsets = sorted({c["subset"] for c in cases})
    prog = Progress(len(cases), f"score {cfg.full.model}", cfg.progress.every_s)
    for sub in subsets:
        cs = [c for c in cases if c["subset"] == sub]
        gen = [str(Path(images_dir) / f"{c['id']}.png") for c in cs]
        missing = [p for p in gen if not Path(p).exists()]
        if missing:
            raise ConfigError(f"{len(missing)} generated images missing in {images_dir} (e.g. {missing[0]}); rerun generate")
        preds = []
        for p in gen:
            preds.append(read(p))
            prog.update(1)
        ocr = ocr_metrics.score([c["raw_text"] for c in cs], preds, thr)
        fid = fid_metric(str(cfg.full.fid_features), inception, rt.device)
        res_clip = []
        bs = int(cfg.full.score_batch)
        for i in range(0, len(cs), bs):
            fake = load_images(gen[i:i + bs], int(cfg.full.fid_resolution))
            real = load_images([c["image"] for c in cs[i:i + bs]], int(cfg.full.fid_resolution))
            fid.update(real.to(rt.device), real=True)
            fid.update(fake.to(rt.device), real=False)
            res_clip.append(clip.score(fake, clip.text([c["prompt"] for c in cs[i:i + bs]])).cpu())
        res[sub] = {**ocr, "clip_score": float(torch.cat(res_clip).mean()), "fid": float(fid.compute())}
    prog.close()
    write_json(out, {"model": str(cfg.full.model), "subsets": res, "wall_s": time.monotonic() - t0, "device": rt.description,
                     "ocr_engine": str(cfg.full.ocr.engine)}, artifact=True)
    return res


if __name__ == "__main__":
    run(main, "textatlas5m", "score")
