"""Phase `ocr_train`: OCR-mini, a CRNN-CTC line recogniser trained on rendered text lines only
(TextAtlas-mini training images and extra renders; never on generator outputs, which would let a
generator game the metric). It stands in for PaddleOCR, the paper's OCR engine.

    python -m steps.textatlas5m.ocr_train scale=mini io.lines=data/textatlas5m/ocr_lines.npz \
        io.out=models/textatlas5m/ocr.pt
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from steps.core import checkpoint, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import load_npz
from steps.core.progress import log
from steps.nn.crnn_ctc import CRNN, Charset
from steps.textatlas5m.synth import ALPHABET

CHARS = ALPHABET + " "


def build(cfg: DictConfig) -> tuple[CRNN, Charset]:
    cs = Charset(CHARS)
    return CRNN(cs.n_classes, tuple(cfg.ocr.channels), int(cfg.ocr.hidden), int(cfg.data.line_height)), cs


def augment(x: torch.Tensor, g: torch.Generator, cfg) -> torch.Tensor:
    """Pixel noise, random contrast/inversion-free brightness shift and an occasional 3×3 blur."""
    b = x.shape[0]
    x = x * (0.6 + 0.4 * torch.rand(b, 1, 1, 1, generator=g)) + 0.2 * torch.rand(b, 1, 1, 1, generator=g)
    blur = (torch.rand(b, 1, 1, 1, generator=g) < float(cfg.ocr.augment_blur_p)).float()
    k = torch.ones(1, 1, 3, 3) / 9.0
    x = blur * F.conv2d(x, k, padding=1) + (1 - blur) * x
    return (x + float(cfg.ocr.augment_noise) * torch.randn(x.shape, generator=g)).clamp(0, 1)


def main(cfg: DictConfig) -> dict:
    lines_path, out = need_io(cfg, "lines", "out")
    t0 = time.monotonic()
    seed = int(cfg.data.seed)
    rt = runtime.start(cfg, seed)
    d = load_npz(lines_path, "OCR line set")
    x = torch.from_numpy(d["crops"].astype(np.float32) / 255.0).unsqueeze(1)
    texts = [str(t) for t in d["texts"]]
    model, cs = build(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.ocr.lr))
    steps = int(cfg.ocr.steps)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(cfg.ocr.lr), total_steps=max(steps, 2), pct_start=0.15)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    loop = checkpoint.TrainLoop(cfg, out, steps, "ocr_train", model=model, optimizer=opt, sched=sched)
    model.train()
    for step in loop:
        g = seeding.step_generator(seed, "ocr", step)
        idx = torch.randint(len(texts), (int(cfg.ocr.batch),), generator=g)
        xb = augment(x[idx], g, cfg)
        tgt, tlen = cs.encode([texts[i] for i in idx.tolist()])
        logp = model(xb)
        loss = ctc(logp, tgt, torch.full((len(idx),), logp.shape[0], dtype=torch.long), tlen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        loop.log(loss=loss.item())
    record = loop.record()
    checkpoint.save(out, cfg, steps, model=model, meta={"chars": CHARS, "train": record, "n_lines": len(texts)})
    loop.finish()
    log.info(f"OCR-mini trained on {len(texts)} rendered lines in {time.monotonic() - t0:.0f} s ({rt.description})")
    return {"n_lines": len(texts)}


def load(path, cfg: DictConfig) -> tuple[CRNN, Charset]:
    """The frozen OCR-mini."""
    payload = checkpoint.load(path, "OCR-mini checkpoint")
    model, cs = build(cfg)
    model.load_state_dict(payload["state"]["model"])
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), cs


@torch.no_grad()
def read_lines(model: CRNN, cs: Charset, crops: np.ndarray, batch: int = 512) -> list[str]:
    """OCR-mini's text for each line crop (N, h, w) in [0, 1]."""
    out: list[str] = []
    for i in range(0, len(crops), batch):
        xb = torch.from_numpy(np.ascontiguousarray(crops[i:i + batch], dtype=np.float32)).unsqueeze(1)
        out += cs.decode(model(xb))
    return out


if __name__ == "__main__":
    run(main, "textatlas5m", "ocr_train")
