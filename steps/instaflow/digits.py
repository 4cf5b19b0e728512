"""Phase `digits`: the image side of the miniature: sklearn digits in [-1, 1] with a caption
of mixed specificity per image (steps.data.digit_captions).

    python -m steps.instaflow.digits scale=mini io.out=data/instaflow/digits.npz io.captions=data/instaflow/captions.parquet
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import need_io, run
from steps.core.io import save_npz, save_parquet
from steps.core.progress import log
from steps.data import digit_captions, digits


def main(cfg: DictConfig) -> dict:
    out, captions_out = need_io(cfg, "out", "captions")
    n = cfg.data.n_images
    x, y = digits.load(None if n is None else int(n), seed=int(cfg.data.seed))
    table = digit_captions.caption_table(_captions_cfg(cfg))
    cap = digit_captions.assign(y, table, cfg.captions.mix, seed=int(cfg.data.seed))
    digest = save_npz(out, images=x, labels=y, caption_id=cap)
    save_parquet(captions_out, table)
    counts = {k: int((table.kind.to_numpy()[cap] == k).sum()) for k in digit_captions.KINDS}
    log.info(f"{len(y)} digits, {len(table)} captions, per kind {counts}, sha256 {digest[:12]}")
    return {"n": len(y), "captions": len(table)}


def _captions_cfg(cfg: DictConfig):
    return OmegaConf.create(OmegaConf.to_container(cfg.captions))


if __name__ == "__main__":
    run(main, "instaflow", "digits")
