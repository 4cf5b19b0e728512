"""Phase `digits`: the image side of the miniature: images in [-1, 1] with a caption of mixed
specificity per image (steps.data.digit_captions). `data.source` picks them: scikit-learn's
8×8 digits (the miniature's data), or real MNIST (steps.data.mnist) at `data.side` ∈ {28, 14, ...},
which the regime study (rule instaflow_regime) uses for its harder data settings.

    python -m steps.instaflow.digits scale=mini io.out=data/instaflow/digits.npz io.captions=data/instaflow/captions.parquet
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz, save_parquet
from steps.core.progress import log
from steps.data import digit_captions, digits, mnist


def main(cfg: DictConfig) -> dict:
    out, captions_out = need_io(cfg, "out", "captions")
    x, y = load_images(cfg.data)
    table = digit_captions.caption_table(_captions_cfg(cfg))
    cap = digit_captions.assign(y, table, cfg.captions.mix, seed=int(cfg.data.seed))
    digest = save_npz(out, images=x, labels=y, caption_id=cap)
    save_parquet(captions_out, table)
    counts = {k: int((table.kind.to_numpy()[cap] == k).sum()) for k in digit_captions.KINDS}
    log.info(f"{len(y)} digits, {len(table)} captions, per kind {counts}, sha256 {digest[:12]}")
    return {"n": len(y), "captions": len(table)}


def load_images(data):
    """(images (N, side²) in [-1, 1], labels) of the `data` section's source, side and count."""
    n = None if data.n_images is None else int(data.n_images)
    side, seed = int(data.side), int(data.seed)
    if data.source == "digits":
        if side != 8:
            raise ConfigError(f"data.source=digits has 8×8 images: data.side must be 8, got {side}")
        total = len(digits.raw()[1])
        if n is not None and n > total:
            raise ConfigError(f"scikit-learn digits has {total} images, data.n_images={n} asked")
        return digits.load(n, seed=seed)
    if data.source == "mnist":
        return mnist.load(n, side=side, seed=seed)
    raise ConfigError(f"data.source must be digits or mnist, got {data.source}")


def _captions_cfg(cfg: DictConfig):
    return OmegaConf.create(OmegaConf.to_container(cfg.captions))


if __name__ == "__main__":
    run(main, "instaflow", "digits")
