"""The data every GPUSQ-ViT phase reads, behind one interface, from the data phase's output:

* smoke, mini (`data.source: fashion_mnist`): the Fashion-MNIST subsets held in memory
  (`InMemory`, from the hashed npz the data phase wrote);
* full (`data.source: imagenet`): ImageNet-1k streamed from the user's class-folder tree
  (`Streamed`, steps.data.imagenet: a DataLoader with `threads - 1` decode workers), after
  checking the tree against the index the data phase wrote (`index.json`).

Both give: `n_train`; `train_batches(seed, batch, start_step)`, the minibatches of global steps
start_step, ... (epoch e in the order randperm(n, step_generator(seed, "epoch", e))); `head(n)`,
n training images without augmentation, as tensors (layer importance, calibration: the first n
of the shuffled Fashion-MNIST subset; n seeded random ImageNet images);
`test_batches()`; `example`, one input (FLOP counting); `describe`, for metric descriptions.

    data = open_data(cfg, "data/gpusq_vit/imagenet_index.json", device)
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import seeding
from steps.core.errors import ArtifactError, ConfigError


class InMemory:
    """Tensors of the miniature (the behaviour and numbers of the in-memory design, unchanged)."""

    chunk = None  # layer importance: the whole head in one forward pass

    def __init__(self, d: dict[str, torch.Tensor], eval_batch: int = 1000):
        self.d, self.eval_batch = d, eval_batch
        self.n_train, self.n_test = len(d["y_train"]), len(d.get("y_test", ()))
        self.describe = f"{self.n_test} Fashion-MNIST test images"

    def train_batches(self, seed: int, batch: int, start_step: int):
        x, y = self.d["x_train"], self.d["y_train"]
        for _, idx in seeding.epoch_batches(len(y), batch, seed, start_step):
            yield x[idx], y[idx]

    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d["x_train"][:n], self.d["y_train"][:n]

    def test_batches(self):
        x, y, b = self.d["x_test"], self.d["y_test"], self.eval_batch
        return ((x[i:i + b], y[i:i + b]) for i in range(0, len(y), b))

    @property
    def example(self) -> torch.Tensor:
        return self.d["x_test"][:1]


class Streamed:
    """ImageNet-1k decoded from the folder tree by DataLoader workers (steps.data.imagenet)."""

    def __init__(self, d: DictConfig, workers: int, pin: bool):
        from steps.data import imagenet

        self.imagenet, self.workers, self.pin = imagenet, workers, pin
        self.train = imagenet.Folder(d, "train", int(d.n_train), int(d.seed))
        self.test = imagenet.Folder(d, "test", int(d.n_test), int(d.seed))
        self.n_train, self.n_test = len(self.train), len(self.test)
        self.eval_batch = self.chunk = int(d.eval_batch)
        self.size, self.seed = int(d.size), int(d.seed)
        self.describe = f"{self.n_test} ImageNet-1k validation images ({d.test_dir}/, {self.size} px centre crop)"

    def train_batches(self, seed: int, batch: int, start_step: int):
        return self.imagenet.stream(self.train.decoded(), seed, batch, start_step, self.workers, self.pin)

    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n training images drawn at random (seeded: the listing is sorted by class), resized and
        centre-cropped: the same images in every phase."""
        pick = torch.randperm(self.n_train, generator=seeding.step_generator(self.seed, "head"))[:n].tolist()
        parts = list(self.imagenet.sequential(self.train.decoded(train=False), self.eval_batch, self.workers, indices=pick))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def test_batches(self):
        return self.imagenet.sequential(self.test.decoded(), self.eval_batch, self.workers, pin=self.pin)

    @property
    def example(self) -> torch.Tensor:
        return torch.zeros(1, 3, self.size, self.size)


def load_npz(path) -> dict[str, torch.Tensor]:
    """{'x_train', 'y_train', 'x_test', 'y_test'} of the data phase's file (hash-checked)."""
    from steps.core.io import load_npz as read

    d = read(path, "Fashion-MNIST subset")
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(d)
    if missing:
        raise ArtifactError(f"{path} lacks {', '.join(sorted(missing))}; rerun the gpusq_vit_data rule")
    return {k: torch.from_numpy(v) for k, v in d.items()}


def open_data(cfg: DictConfig, path, device: torch.device | None = None, threads: int | None = None):
    """The data of `cfg.data.source` as written by the data phase at `path` (see module doc)."""
    d = cfg.data
    if d.source == "fashion_mnist":
        return InMemory(load_npz(path), int(d.eval_batch))
    if d.source != "imagenet":
        raise ConfigError(f"data.source must be fashion_mnist or imagenet, got {d.source!r}")
    from steps.core.io import read_json

    index = read_json(path, "ImageNet index")
    threads = int(cfg.threads) if threads is None else threads
    data = Streamed(d, workers=max(0, threads - 1), pin=device is not None and device.type == "cuda")
    for split, folder in (("train", data.train), ("test", data.test)):
        want = (index.get("splits") or {}).get(split) or {}
        if want.get("sha256") != folder.digest():
            raise ArtifactError(f"{folder.base}: the image listing differs from {path} ({want.get('images')} images "
                                f"indexed, {len(folder)} now); rerun the gpusq_vit_data rule if the change is intended")
    return data


def write_index(cfg: DictConfig, out) -> dict:
    """The full-scale data phase: index both splits of the ImageNet tree at data.root, check the
    counts against data.n_train / n_test, and write index.json (the DAG's data artifact)."""
    from steps.core.io import write_json
    from steps.data import imagenet

    d = cfg.data
    if not d.root or not Path(str(d.root)).is_dir():
        raise ArtifactError(f"ImageNet directory data.root={d.root} is missing: ImageNet-1k is user-provided "
                            f"(licence: image-net.org); put ILSVRC2012 at <root>/{d.train_dir}/<wnid>/*.JPEG and "
                            f"<root>/{d.test_dir}/<wnid>/*.JPEG and give data.root=<root>")
    splits = {}
    for split, n in (("train", int(d.n_train)), ("test", int(d.n_test))):
        folder = imagenet.Folder(d, split, n, int(d.seed))  # a seeded subset where n < the images found
        if len(folder) < n:
            raise ArtifactError(f"{folder.base}: {len(folder)} images, data.n_{split}={n} expected (an incomplete copy "
                                f"of ImageNet-1k? ILSVRC2012 has 1281167 train and 50000 val images)")
        splits[split] = imagenet.manifest(folder)
    if splits["train"]["class_names"] != splits["test"]["class_names"]:
        raise ArtifactError(f"{d.root}: {d.train_dir}/ and {d.test_dir}/ hold different class folders")
    record = {"source": "imagenet", "root": str(d.root), "size": int(d.size), "splits": splits}
    write_json(out, record, artifact=True)
    return record
