"""Phase `captions`: embed every distinct caption once with the frozen all-MiniLM-L6-v2
(or, as the spec's fallback used at smoke scale, a one-hot caption id).

    python -m steps.instaflow.captions scale=mini io.out=data/instaflow/caption_emb.npz
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import log
from steps.data import digit_captions, text_embed


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    table = digit_captions.caption_table(cfg.captions)
    if cfg.captions.encoder == text_embed.MODEL_NAME:
        emb = text_embed.embed(table.text.tolist())
    elif cfg.captions.encoder == "one_hot":  # the spec's fallback: the flow learns an embedding per caption
        emb = np.eye(len(table), dtype=np.float32)
    else:
        raise ConfigError(f"captions.encoder must be {text_embed.MODEL_NAME} or one_hot, got {cfg.captions.encoder}")
    save_npz(out, embedding=emb, caption_id=table.id.to_numpy())
    log.info(f"embedded {len(table)} captions → {emb.shape} with {cfg.captions.encoder}")
    return {"captions": len(table)}


if __name__ == "__main__":
    run(main, "instaflow", "captions")
