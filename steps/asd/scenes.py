"""AnySize-Digits: procedural scenes on canvases of several aspect ratios (the miniature of
LAION-COCO's multi-ratio images), and their high-resolution glyph versions for the FSTD stage.

A scene is one digit sprite pasted fully inside a dark canvas above a light "ground band" along
the bottom 15 %. The sprite scale is the same on every canvas (the spec's pitfall: ARAD must not
see the evaluation ratios at another object scale than square-only). Values in [-1, 1].

Composition metrics (`composition`) count the bright connected components above the band:
exactly one object is right; an object whose box touches the canvas border is cropped; the
prompt is honoured when the digits classifier reads the object as the requested digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

UPSCALE_IDX = np.floor(np.arange(12) / 1.5).astype(int)  # 8 → 12 nearest (×1.5)


def bucket_name(h: int, w: int) -> str:
    return f"b{h}x{w}"


def parse_bucket(name: str) -> tuple[int, int]:
    h, w = name[1:].split("x")
    return int(h), int(w)


def band_rows(h: int, frac: float) -> int:
    return int(round(frac * h))


def sprites(digits01: np.ndarray) -> np.ndarray:
    """(N, 8, 8) digits in [0, 1] → (N, 12, 12) nearest-upscaled sprites."""
    return digits01[:, UPSCALE_IDX][:, :, UPSCALE_IDX]


def render(sprite: np.ndarray, h: int, w: int, y0: int, x0: int, sc) -> np.ndarray:
    """One scene in [0, 1]: background, ground band, the sprite at (y0, x0) (max-composited)."""
    canvas = np.full((h, w), float(sc.background), np.float32)
    canvas[h - band_rows(h, float(sc.band_frac)):] = float(sc.band_level)
    sh, sw = sprite.shape
    canvas[y0:y0 + sh, x0:x0 + sw] = np.maximum(canvas[y0:y0 + sh, x0:x0 + sw], sprite)
    return canvas


def positions(h: int, w: int, side: int, sc, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform top-left corners keeping the sprite `margin` px inside the canvas and above the band."""
    m = int(sc.margin)
    y_hi = h - band_rows(h, float(sc.band_frac)) - side
    x_hi = w - side - m
    if y_hi < m or x_hi < m:
        raise ValueError(f"canvas {h}×{w} is too small for a {side}px sprite with margin {m}")
    return rng.integers(m, y_hi + 1, n), rng.integers(m, x_hi + 1, n)


def make_bucket(digits01: np.ndarray, labels: np.ndarray, h: int, w: int, n: int, sc, rng) -> tuple[np.ndarray, np.ndarray]:
    """n scenes (n, 1, h, w) in [-1, 1] and their digit labels."""
    idx = rng.integers(0, len(labels), n)
    spr = sprites(digits01[idx])
    ys, xs = positions(h, w, spr.shape[1], sc, rng, n)
    x = np.stack([render(s, h, w, y, xx, sc) for s, y, xx in zip(spr, ys, xs, strict=True)])
    return (2.0 * x - 1.0)[:, None].astype(np.float32), labels[idx].astype(np.int64)


# ---- high-resolution glyph scenes (stage 2: FSTD super-resolution) -------------------------

def font_paths(names) -> list[Path]:
    """DejaVu fonts shipped inside matplotlib (mpl-data/fonts/ttf): no network, no system fonts."""
    import matplotlib

    base = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    paths = [base / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        from steps.core.errors import ArtifactError

        raise ArtifactError(f"font(s) not found: {', '.join(missing)} (matplotlib's bundled DejaVu fonts)")
    return paths


def glyph(digit: int, font_path: Path, size: int, box: int) -> np.ndarray:
    """The digit rendered white on black, anti-aliased, centred in a box × box array in [0, 1]."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    img = Image.new("L", (box, box), 0)
    d = ImageDraw.Draw(img)
    left, top, right, bottom = d.textbbox((0, 0), str(digit), font=font)
    d.text(((box - (right - left)) / 2 - left, (box - (bottom - top)) / 2 - top), str(digit), fill=255, font=font)
    return np.asarray(img, np.float32) / 255.0


def make_hr(h: int, w: int, n: int, sc, hr, rng) -> tuple[np.ndarray, np.ndarray]:
    """n high-resolution glyph scenes (n, 1, 2h, 2w) in [-1, 1] (the same layout as the
    low-resolution scenes, at scale `hr.factor`) and their labels."""
    f = int(hr.factor)
    fonts = font_paths(hr.fonts)
    side = 12 * f
    cache = {(d, i, s): glyph(d, fp, s, side) for d in range(10) for i, fp in enumerate(fonts) for s in hr.font_sizes}
    labels = rng.integers(0, 10, n)
    fi = rng.integers(0, len(fonts), n)
    sizes = [int(s) for s in hr.font_sizes]
    si = rng.integers(0, len(sizes), n)
    ys, xs = positions(h, w, 12, sc, rng, n)
    out = np.empty((n, 1, f * h, f * w), np.float32)
    for k in range(n):
        g = cache[(int(labels[k]), int(fi[k]), int(sizes[si[k]]))]
        out[k, 0] = 2.0 * render(g, f * h, f * w, f * int(ys[k]), f * int(xs[k]), sc) - 1.0
    return out, labels.astype(np.int64)


def downsample(x: np.ndarray, f: int) -> np.ndarray:
    """Box (area) downsampling by f of (..., H, W)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // f, f, w // f, f).mean(axis=(-3, -1))


# ---- composition metrics --------------------------------------------------------------------

def components(img01: np.ndarray, h_band: int, sc_eval) -> list[tuple[int, int, int, int, int]]:
    """Bright 8-connected components above the band: (area, y0, y1, x0, x1) per component of at
    least `min_pixels` pixels (y1, x1 exclusive)."""
    from scipy import ndimage

    region = img01[: img01.shape[0] - h_band] if h_band else img01
    mask = region > float(sc_eval.threshold)
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    out = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        area = int((lab[sl] == i).sum())
        if area >= int(sc_eval.min_pixels):
            out.append((area, sl[0].start, sl[0].stop, sl[1].start, sl[1].stop))
    return out


def object_crop(img01: np.ndarray, comp, side: int = 12) -> np.ndarray:
    """The side × side window centred on a component's box (the canvas padded with background)."""
    _, y0, y1, x0, x1 = comp
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    pad = np.pad(img01, side, constant_values=float(img01.min()))
    ys, xs = cy + side - side // 2, cx + side - side // 2
    return pad[ys:ys + side, xs:xs + side]


def composition(images: np.ndarray, sc, sc_eval) -> dict[str, np.ndarray]:
    """Per image (N, 1, H, W) in [-1, 1]: object count, cropped flag, and the 8×8 crop of its
    largest object (area-downsampled from the 12×12 window, in the digits' [-1, 1] range; a
    blank crop when there is no object)."""
    n, _, h, w = images.shape
    hb = band_rows(h, float(sc.band_frac))
    counts = np.zeros(n, np.int64)
    cropped = np.zeros(n, bool)
    crops = np.full((n, 64), -1.0, np.float32)
    for k in range(n):
        img = np.clip((images[k, 0] + 1.0) / 2.0, 0.0, 1.0)
        comps = components(img, hb, sc_eval)
        counts[k] = len(comps)
        cropped[k] = any(y0 == 0 or x0 == 0 or x1 == w for _, y0, _, x0, x1 in comps)
        if comps:
            win = object_crop(img, max(comps))
            crops[k] = (2.0 * area8(win) - 1.0).reshape(-1)
    return {"count": counts, "cropped": cropped, "crops": crops}


def area8(win12: np.ndarray) -> np.ndarray:
    """12×12 → 8×8 by area averaging (the inverse of the ×1.5 sprite upscale, up to blur)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(win12, np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=(8, 8), mode="area")[0, 0].numpy()
