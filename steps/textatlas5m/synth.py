"""TextAtlas-mini: the three synthetic levels of TextAtlas5M (§3.1) rendered with real fonts at
32×128 gray, plus the short-text subset that stands for older text-image datasets.

- short:  1–2 words, large font (AnyText / MARIO-style short text).
- clean:  CleanTextSynth — 2 lines of long text on a clean, light background, varied fonts.
- blend:  TextVisionBlend — text lines interleaved with image content (procedural shapes).
- styled: StyledTextSynth — text on a tilted, coloured "billboard" over a gradient/noise scene.

Every sample keeps its layout (a line slot per text line: y0, y1, x0, x1 and the line's text),
as TextAtlas5M keeps bboxes in its metadata. The vocabulary is a fixed set of pronounceable
pseudo-words (seeded), a stand-in for the LLM-written / real text of the paper.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DOMAINS = ("short", "clean", "blend", "styled")
DENSE = ("clean", "blend", "styled")
SCENES = ("poster", "sign", "page", "banner", "label", "board", "card", "screen", "flyer", "menu", "note", "cover")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
MAX_LINES = 2


def vocabulary(n: int, seed: int, min_len: int = 3, max_len: int = 5) -> list[str]:
    """`n` distinct pronounceable lower-case pseudo-words (consonant/vowel patterns), seeded."""
    rng = np.random.default_rng(seed)
    cons, vow = "bcdfghjklmnprstvwz", "aeiou"
    words: list[str] = []
    seen = set()
    while len(words) < n:
        length = int(rng.integers(min_len, max_len + 1))
        start = int(rng.integers(2))
        w = "".join(rng.choice(list(cons if (i + start) % 2 == 0 else vow)) for i in range(length))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def font_paths(dirs, names) -> list[str]:
    """The font files named in params (file names under one of `dirs`); a missing one is an error."""
    found = {}
    for d in dirs:
        for p in glob.glob(os.path.join(str(d), "**", "*.ttf"), recursive=True):
            found.setdefault(os.path.basename(p), p)
    missing = [n for n in names if n not in found]
    if missing:
        raise FileNotFoundError(f"fonts not found under {list(dirs)}: {', '.join(missing)} "
                                "(install fonts-dejavu-core fonts-liberation fonts-freefont-ttf: scripts/setup.sh)")
    return [found[n] for n in names]


@lru_cache(maxsize=512)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


@dataclass
class Sample:
    image: np.ndarray          # (H, W) uint8
    lines: list[str]           # the text of each line slot
    slots: list[tuple]         # (y0, y1, x0, x1) per line, in image pixels
    domain: str
    scene: str

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def caption(self) -> str:  # TextAtlas5M annotation: scene description + quoted exact text
        return f"a {self.scene} with the text : '{self.text}'"


def _split_lines(words: list[str], n_lines: int) -> list[list[str]]:
    """Balance words over n_lines lines by characters."""
    if n_lines == 1:
        return [words]
    total = sum(len(w) + 1 for w in words)
    acc, cut = 0, 1
    for i, w in enumerate(words):
        acc += len(w) + 1
        if acc >= total / 2:
            cut = max(1, min(len(words) - 1, i + 1))
            break
    return [words[:cut], words[cut:]]


def _fit(lines: list[str], font: str, sizes: tuple[int, int], width: int, height: int, draw):
    """The largest font size in [lo, hi] whose lines fit width × height, else None."""
    for s in range(sizes[1], sizes[0] - 1, -1):
        f = _font(font, s)
        asc, desc = f.getmetrics()
        if len(lines) * (asc + desc) <= height and max(draw.textlength(t, font=f) for t in lines) <= width:
            return s
    return None


def _draw_lines(draw, lines, font, size, box, rng, fill):
    """Draw lines inside box (x0, y0, x1, y1) with jitter; returns each line's slot."""
    f = _font(font, size)
    asc, desc = f.getmetrics()
    lh = asc + desc
    x0, y0, x1, y1 = box
    spare_y = (y1 - y0) - len(lines) * lh
    y = y0 + int(rng.integers(0, max(0, spare_y) + 1))
    widths = [draw.textlength(t, font=f) for t in lines]
    spare_x = (x1 - x0) - max(widths)
    xs = x0 + int(rng.integers(0, max(0, int(spare_x)) + 1))
    slots = []
    for t, w in zip(lines, widths, strict=True):
        draw.text((xs, y), t, font=f, fill=fill)
        slots.append((max(0, y - 1), min(y1 + 1, y + lh + 1), max(0, xs - 2), min(x1 + 1, int(xs + w) + 3)))
        y += lh
    return slots


def render(domain: str, words: list[str], rng: np.random.Generator, fonts: list[str], cfg) -> Sample | None:
    """One TextAtlas-mini sample of `domain` showing `words`; None when they cannot fit."""
    from PIL import Image, ImageDraw

    if domain not in DOMAINS:
        raise ValueError(f"unknown TextAtlas-mini domain {domain!r}; valid: {', '.join(DOMAINS)}")
    H, W = int(cfg.height), int(cfg.width)
    font = fonts[int(rng.integers(len(fonts)))]
    scene = SCENES[int(rng.integers(len(SCENES)))]
    sizes = tuple(cfg.font_sizes[domain])
    if domain == "short":
        bg = int(rng.integers(200, 256))
        img = Image.new("L", (W, H), bg)
        d = ImageDraw.Draw(img)
        lines = [" ".join(words)]
        s = _fit(lines, font, sizes, W - 4, H - 2, d)
        if s is None:
            return None
        slots = _draw_lines(d, lines, font, s, (2, 1, W - 2, H - 1), rng, int(rng.integers(0, 70)))
        return Sample(np.asarray(img), lines, slots, domain, scene)
    lines = [" ".join(w) for w in _split_lines(words, MAX_LINES)]
    if domain == "clean":
        bg = int(rng.integers(215, 256))
        img = Image.new("L", (W, H), bg)
        d = ImageDraw.Draw(img)
        s = _fit(lines, font, sizes, W - 4, H - 2, d)
        if s is None:
            return None
        slots = _draw_lines(d, lines, font, s, (2, 1, W - 2, H - 1), rng, int(rng.integers(0, 60)))
        return Sample(np.asarray(img), lines, slots, domain, scene)
    if domain == "blend":
        # interleaved layout: an image block (shapes) on one side, the text column on the other
        bg = int(rng.integers(200, 256))
        img = Image.new("L", (W, H), bg)
        d = ImageDraw.Draw(img)
        bw = int(cfg.blend_block_width)
        left = bool(rng.integers(2))
        bx0 = 0 if left else W - bw
        d.rectangle((bx0, 0, bx0 + bw - 1, H - 1), fill=int(rng.integers(120, 200)))
        for _ in range(int(rng.integers(2, 5))):
            cx, cy, r = bx0 + int(rng.integers(3, bw - 3)), int(rng.integers(3, H - 3)), int(rng.integers(3, 8))
            shade = int(rng.integers(0, 256))
            (d.ellipse if rng.integers(2) else d.rectangle)((cx - r, cy - r, cx + r, cy + r), fill=shade)
        tx0, tx1 = (bw + 2, W - 2) if left else (2, W - bw - 2)
        s = _fit(lines, font, sizes, tx1 - tx0, H - 2, d)
        if s is None:
            return None
        slots = _draw_lines(d, lines, font, s, (tx0, 1, tx1, H - 1), rng, int(rng.integers(0, 60)))
        return Sample(np.asarray(img), lines, slots, domain, scene)
    return _styled(lines, font, sizes, scene, rng, cfg, H, W)


def _styled(lines, font, sizes, scene, rng, cfg, H, W):
    """StyledTextSynth-mini: the text on a board tilted by a small angle over a procedural scene."""
    from PIL import Image, ImageDraw

    gy = np.linspace(0, 1, H)[:, None] * rng.uniform(-80, 80) + np.linspace(0, 1, W)[None, :] * rng.uniform(-80, 80)
    scene_px = np.clip(128 + gy + rng.normal(0, float(cfg.styled_noise), (H, W)), 0, 255).astype(np.uint8)
    img = Image.fromarray(scene_px, "L")
    board_bg = int(rng.integers(185, 256))
    board = Image.new("L", (W - 4, H - 2), board_bg)
    bd = ImageDraw.Draw(board)
    s = _fit(lines, font, sizes, W - 10, H - 4, bd)
    if s is None:
        return None
    slots = _draw_lines(bd, lines, font, s, (3, 1, W - 7, H - 3), rng, int(rng.integers(0, 70)))
    angle = float(rng.uniform(-cfg.styled_max_angle, cfg.styled_max_angle))
    mask = Image.new("L", board.size, 255)
    board_r, mask_r = board.rotate(angle, expand=True, fillcolor=0), mask.rotate(angle, expand=True, fillcolor=0)
    ox, oy = (W - board_r.size[0]) // 2, (H - board_r.size[1]) // 2
    img.paste(board_r, (ox, oy), mask_r)
    # slots follow the rotation: the axis-aligned box of each rotated line rectangle
    cx, cy = board.size[0] / 2, board.size[1] / 2
    rcx, rcy = board_r.size[0] / 2, board_r.size[1] / 2
    th = np.deg2rad(angle)
    rot = []
    for y0, y1, x0, x1 in slots:
        pts = np.array([(x0, y0), (x1, y0), (x0, y1), (x1, y1)], float) - (cx, cy)
        rx = pts[:, 0] * np.cos(th) + pts[:, 1] * np.sin(th) + rcx + ox
        ry = -pts[:, 0] * np.sin(th) + pts[:, 1] * np.cos(th) + rcy + oy
        rot.append((int(max(0, ry.min())), int(min(H, np.ceil(ry.max()))), int(max(0, rx.min())), int(min(W, np.ceil(rx.max())))))
    return Sample(np.asarray(img), lines, rot, "styled", scene)


def sample_words(domain: str, vocab: list[str], rng: np.random.Generator, cfg) -> list[str]:
    lo, hi = cfg.n_words[domain]
    n = int(rng.integers(int(lo), int(hi) + 1))
    return [vocab[i] for i in rng.choice(len(vocab), size=n, replace=False)]


def make_set(domain: str, n: int, vocab, fonts, cfg, rng, exclude: set[str] | None = None) -> list[Sample]:
    """`n` samples of a domain; texts in `exclude` are redrawn (eval/training disjointness)."""
    out: list[Sample] = []
    texts: set[str] = set()
    while len(out) < n:
        words = sample_words(domain, vocab, rng, cfg)
        key = " ".join(words)
        if (exclude and key in exclude) or key in texts:
            continue
        s = render(domain, words, rng, fonts, cfg)
        if s is not None:
            texts.add(key)
            out.append(s)
    return out


def pack(samples: list[Sample]) -> dict[str, np.ndarray]:
    """Samples as arrays for an npz (no pickled objects): images, texts, per-line slots and texts."""
    slots = np.full((len(samples), MAX_LINES, 4), -1, np.int16)
    lines = np.full((len(samples), MAX_LINES), "", dtype="<U64")
    for i, s in enumerate(samples):
        for j, (sl, t) in enumerate(zip(s.slots, s.lines, strict=True)):
            slots[i, j], lines[i, j] = sl, t
    return {
        "images": np.stack([s.image for s in samples]).astype(np.uint8),
        "text": np.array([s.text for s in samples], dtype="<U160"),
        "caption": np.array([s.caption for s in samples], dtype="<U200"),
        "domain": np.array([s.domain for s in samples], dtype="<U8"),
        "slots": slots,
        "lines": lines,
    }


def line_crops(images: np.ndarray, slots: np.ndarray, lines: np.ndarray, h: int, w: int):
    """Every line slot cropped, resized to height h (aspect kept), right-padded to width w.
    Returns (crops (N, h, w) float in [0, 1], texts, (image index, line index))."""
    from PIL import Image

    crops, texts, where = [], [], []
    for i in range(len(images)):
        for j in range(slots.shape[1]):
            y0, y1, x0, x1 = (int(v) for v in slots[i, j])
            if y0 < 0:
                continue
            crops.append(crop_line(images[i], (y0, y1, x0, x1), h, w, Image))
            texts.append(str(lines[i, j]))
            where.append((i, j))
    arr = np.stack(crops) if crops else np.zeros((0, h, w), np.float32)
    return arr, texts, np.array(where, dtype=np.int64).reshape(-1, 2)


def crop_line(image: np.ndarray, slot, h: int, w: int, Image=None) -> np.ndarray:
    if Image is None:
        from PIL import Image
    y0, y1, x0, x1 = slot
    c = np.asarray(image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)], dtype=np.uint8)
    pil = Image.fromarray(c, "L")
    nw = max(1, min(w, int(round(c.shape[1] * h / max(1, c.shape[0])))))
    pil = pil.resize((nw, h), Image.BILINEAR)
    out = np.full((h, w), float(np.median(c)) / 255.0, np.float32)
    out[:, :nw] = np.asarray(pil, np.float32) / 255.0
    return out
