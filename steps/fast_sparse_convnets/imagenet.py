"""Full scale: ImageNet-1k (user-provided, ILSVRC2012) in the usual class-folder layout,
<root>/<split>/<wnid>/*.JPEG (the validation images sorted into class folders), decoded per
minibatch with Pillow: train = random-resized crop + horizontal flip, test = resize + centre crop;
standardised with the ImageNet channel statistics.

    train/n01440764/n01440764_10026.JPEG ...   val/n01440764/ILSVRC2012_val_00000293.JPEG ...

Not used at smoke or mini (no download: ImageNet's licence requires the user to fetch it).
Single-process decoding; a cluster run wants more decode workers (torch DataLoader) — the
interface (`get(idx)`) is what the training loop needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
EXTENSIONS = (".jpeg", ".jpg", ".png")


def index(root: Path, split_dir: str) -> tuple[list[Path], np.ndarray, list[str]]:
    """(files, labels, class names) of <root>/<split_dir>, classes in sorted folder order."""
    base = Path(root) / split_dir
    if not base.is_dir():
        raise ArtifactError(f"image folder {base} is missing: give data.root=<ImageNet dir> holding "
                            f"{split_dir}/<class>/<image> (ILSVRC2012, user-provided)")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    files, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted((base / c).iterdir()):
            if f.suffix.lower() in EXTENSIONS:
                files.append(f)
                labels.append(i)
    if not files:
        raise ArtifactError(f"image folder {base} holds no images")
    return files, np.asarray(labels, np.int64), classes


def decode(path: Path, size: int, train: bool, rng: np.random.Generator) -> np.ndarray:
    """One image as (3, size, size) float32, standardised."""
    from PIL import Image

    try:
        img = Image.open(path).convert("RGB")
    except OSError as e:
        raise ArtifactError(f"cannot decode image {path}: {e}") from None
    w, h = img.size
    if train:  # random-resized crop, scale [0.08, 1], ratio [3/4, 4/3] (the usual ImageNet recipe)
        for _ in range(10):
            area = w * h * rng.uniform(0.08, 1.0)
            ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                break
        else:
            cw = ch = min(w, h)
            x0, y0 = (w - cw) // 2, (h - ch) // 2
        img = img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
    else:  # resize the short side to size / 0.875, centre crop
        s = size / 0.875 / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        w2, h2 = img.size
        x0, y0 = (w2 - size) // 2, (h2 - size) // 2
        img = img.crop((x0, y0, x0 + size, y0 + size))
    a = (np.asarray(img, np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(a.transpose(2, 0, 1))


class Folder:
    """A split of an image folder, decoded per minibatch (`get`), deterministic per (seed, call)."""

    def __init__(self, d, split: str, n: int | None, seed: int):
        split_dir = str(d.train_dir if split == "train" else d.test_dir)
        files, labels, _ = index(Path(d.root), split_dir)
        if n is not None and n < len(files):  # a seeded subset (tests, quick looks)
            keep = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
            files, labels = [files[i] for i in keep], labels[keep]
        self.files, self.labels, self.size, self.train = files, labels, int(d.size), split == "train"
        self.seed = seed

    def __len__(self) -> int:
        return len(self.files)

    def get(self, idx, step: int = 0):
        import torch

        idx = np.asarray(idx).reshape(-1)
        rng = np.random.default_rng([self.seed, step])
        x = np.stack([decode(self.files[i], self.size, self.train, rng) for i in idx])
        return torch.from_numpy(x), torch.from_numpy(self.labels[idx])
