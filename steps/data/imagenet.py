"""ImageNet-1k (user-provided, ILSVRC2012) in the usual class-folder layout,
<root>/<split>/<wnid>/*.JPEG (the validation images sorted into class folders), decoded with
Pillow: train = random-resized crop + horizontal flip, test = resize + centre crop; standardised
with the ImageNet channel statistics. The full scale of the image-classification papers
(fast_sparse_convnets, gpusq_vit); no download (ImageNet's licence requires the user to fetch it).

    train/n01440764/n01440764_10026.JPEG ...   val/n01440764/ILSVRC2012_val_00000293.JPEG ...

Two ways to read a split:
* `Folder.get(idx, step)`: one minibatch decoded in the calling process (fast_sparse_convnets);
* `stream(...)` / `sequential(...)`: a torch DataLoader with `workers` decode processes over a
  `Decoded` split, for GPU jobs; sample i of epoch e is augmented with the generator
  (seed, e, i), so the minibatches are the same whatever the number of workers, and a resumed
  run gets what the uninterrupted run got.

    folder = Folder(cfg.data, "train", None, seed)
    for xb, yb in stream(folder.decoded(), seed, batch=512, start_step=0, workers=15): ...

`manifest(...)` summarises a split's listing (class names, counts, SHA-256 of the sorted
file list) so a data phase can write a small index file and later phases can check the tree
has not changed under them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from steps.core.errors import ArtifactError, ConfigError

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


def decode(path: Path, size: int, train: bool, rng: np.random.Generator, resample: str = "bilinear") -> np.ndarray:
    """One image as (3, size, size) float32, standardised; `resample`: bilinear or bicubic."""
    from PIL import Image

    mode = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}.get(resample)
    if mode is None:
        raise ConfigError(f"image resampling must be bilinear or bicubic, got {resample!r}")
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
        img = img.resize((size, size), mode, box=(x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
    else:  # resize the short side to size / 0.875, centre crop
        s = size / 0.875 / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), mode)
        w2, h2 = img.size
        x0, y0 = (w2 - size) // 2, (h2 - size) // 2
        img = img.crop((x0, y0, x0 + size, y0 + size))
    a = (np.asarray(img, np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(a.transpose(2, 0, 1))


class Folder:
    """A split of an image folder, decoded per minibatch (`get`), deterministic per (seed, call)."""

    def __init__(self, d, split: str, n: int | None, seed: int):
        split_dir = str(d.train_dir if split == "train" else d.test_dir)
        files, labels, self.classes = index(Path(d.root), split_dir)
        if n is not None and n < len(files):  # a seeded subset (tests, quick looks)
            keep = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
            files, labels = [files[i] for i in keep], labels[keep]
        self.files, self.labels, self.size, self.train = files, labels, int(d.size), split == "train"
        self.seed, self.base = seed, Path(d.root) / split_dir
        self.resample = str(d.get("interpolation", "bilinear"))

    def __len__(self) -> int:
        return len(self.files)

    def get(self, idx, step: int = 0):
        import torch

        idx = np.asarray(idx).reshape(-1)
        rng = np.random.default_rng([self.seed, step])
        x = np.stack([decode(self.files[i], self.size, self.train, rng, self.resample) for i in idx])
        return torch.from_numpy(x), torch.from_numpy(self.labels[idx])

    def decoded(self, train: bool | None = None) -> Decoded:
        """This split as a map-style dataset for a DataLoader (`train`: augment; default: the split's own)."""
        return Decoded(self.files, self.labels, self.size, self.train if train is None else train, self.seed,
                       self.resample)

    def digest(self) -> str:
        """SHA-256 of the listing: "<path relative to the split folder>\t<label>" per image, in order."""
        h = hashlib.sha256()
        for f, y in zip(self.files, self.labels, strict=True):
            h.update(f"{f.relative_to(self.base).as_posix()}\t{int(y)}\n".encode())
        return h.hexdigest()


class Decoded:
    """A split as a map-style dataset: item (i, epoch) is image i decoded (and, for training,
    augmented with the generator (seed, epoch, i)) as ((3, size, size) float32 tensor, label)."""

    def __init__(self, files: list[Path], labels: np.ndarray, size: int, train: bool, seed: int,
                 resample: str = "bilinear"):
        self.files, self.labels, self.size, self.train, self.seed = files, labels, size, train, seed
        self.resample = resample

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key):
        import torch

        i, epoch = key
        rng = np.random.default_rng([self.seed, epoch, i])
        return torch.from_numpy(decode(self.files[i], self.size, self.train, rng, self.resample)), int(self.labels[i])


def _one_thread(_worker: int) -> None:
    """DataLoader worker init: decoding is Pillow work; one torch thread per worker process."""
    import torch

    torch.set_num_threads(1)


def _loader(data: Decoded, batches: list, workers: int, pin: bool):
    from torch.utils.data import DataLoader

    return DataLoader(data, batch_sampler=batches, num_workers=workers, pin_memory=pin,
                      worker_init_fn=_one_thread if workers else None, prefetch_factor=4 if workers else None)


def stream(data: Decoded, seed: int, batch: int, start_step: int, workers: int, pin: bool = False,
           order: str = "epoch"):
    """Training minibatches (x, y) of global steps start_step, start_step + 1, ... (endless):
    epoch e visits the images in the order torch.randperm(n, step_generator(seed, order, e)),
    `batch` at a time (the last minibatch of an epoch may be smaller), decoded by `workers`
    processes (0: in this process)."""
    from itertools import groupby

    from steps.core import seeding

    steps = seeding.epoch_batches(len(data), batch, seed, start_step, order)
    for epoch, group in groupby(steps, key=lambda t: t[0]):  # one DataLoader per epoch
        yield from _loader(data, [[(i, epoch) for i in idx.tolist()] for _, idx in group], workers, pin)


def sequential(data: Decoded, batch: int, workers: int, n: int | None = None, pin: bool = False,
               indices=None):
    """Images `indices` (default: the first `n`, default all) in that order, `batch` at a time:
    evaluation, calibration."""
    if indices is None:
        indices = range(len(data) if n is None else min(int(n), len(data)))
    idx = [int(i) for i in indices]
    return _loader(data, [[(i, 0) for i in idx[a:a + batch]] for a in range(0, len(idx), batch)], workers, pin)


def manifest(folder: Folder) -> dict:
    """What a data phase records of a split: folder, image and class counts, the class names
    (label order) and the listing's SHA-256."""
    return {"dir": folder.base.as_posix(), "images": len(folder), "classes": len(folder.classes),
            "class_names": folder.classes, "sha256": folder.digest()}
