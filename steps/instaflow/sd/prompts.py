"""Phase `prompts` (full scale): the training prompts and the evaluation captions.

    python -m steps.instaflow.sd.prompts scale=full io.laion=data/instaflow/laion \
        io.coco=data/instaflow/coco io.train=data/instaflow/prompts_train.parquet \
        io.eval=data/instaflow/prompts_coco.parquet

Training (InstaFlow §4, "text prompts randomly sampled from laion2B-en"): a seeded sample of
`prompts.n_train` captions, without replacement, from the LAION metadata parquet files under
io.laion (column `prompts.text_column`; blank and too-short captions dropped, duplicates
optionally). Row i of the table is the prompt of pair i.

Evaluation (§4, "MS COCO 2017 ... 5,000 images"): one caption per val2017 image, chosen with the
same seed among the image's (about five) captions, for `prompts.n_eval` images in id order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import require, save_parquet
from steps.core.progress import log


def laion_captions(folder, column: str, min_chars: int, dedupe: bool) -> pd.Series:
    """Every usable caption of the parquet files under `folder`, in file order."""
    import pyarrow.parquet as pq

    files = sorted(Path(require(folder, "LAION metadata folder")).rglob("*.parquet"))
    if not files:
        raise ArtifactError(f"no parquet files under {folder}; rerun instaflow_fetch for the laion asset")
    parts = []
    for f in files:
        names = pq.read_schema(f).names
        if column not in names:
            raise ConfigError(f"{f} has no column '{column}' (prompts.text_column); its columns: {', '.join(names)}")
        parts.append(pq.read_table(f, columns=[column]).column(0).to_pandas())
    text = pd.concat(parts, ignore_index=True).dropna().astype(str).str.strip()
    text = text[text.str.len() >= int(min_chars)]
    if dedupe:
        text = text.drop_duplicates()
    return text.reset_index(drop=True)


def sample_train(text: pd.Series, n: int, seed: int) -> pd.DataFrame:
    if n > len(text):
        raise ConfigError(f"prompts.n_train = {n} but only {len(text)} usable captions were fetched; "
                          "fetch more LAION files (sd.assets.laion) or lower prompts.n_train")
    pick = np.sort(np.random.default_rng(seed).choice(len(text), size=n, replace=False))
    return pd.DataFrame({"id": np.arange(n, dtype=np.int64), "text": text.iloc[pick].tolist()})


def coco_captions(coco_dir, annotations: str, images: str, n: int, seed: int) -> pd.DataFrame:
    """One caption per image: image_id, path (relative to the COCO folder), caption."""
    ann_path = require(Path(coco_dir) / annotations, "COCO captions file")
    ann = json.loads(ann_path.read_text())
    by_image: dict[int, list[tuple[int, str]]] = {}
    for a in ann["annotations"]:
        by_image.setdefault(int(a["image_id"]), []).append((int(a["id"]), a["caption"].strip()))
    imgs = sorted((int(i["id"]), i["file_name"]) for i in ann["images"] if int(i["id"]) in by_image)
    if n > len(imgs):
        raise ConfigError(f"prompts.n_eval = {n} but {ann_path} has {len(imgs)} captioned images")
    rng = np.random.default_rng(seed)
    rows = []
    for image_id, name in imgs[:n]:
        caps = sorted(by_image[image_id])
        rows.append((image_id, f"{images}/{name}", caps[int(rng.integers(len(caps)))][1]))
    return pd.DataFrame(rows, columns=["image_id", "path", "caption"])


def main(cfg: DictConfig) -> dict:
    laion, coco, train_out, eval_out = need_io(cfg, "laion", "coco", "train", "eval")
    p = cfg.prompts
    text = laion_captions(laion, str(p.text_column), int(p.min_chars), bool(p.dedupe))
    train = sample_train(text, int(p.n_train), int(p.seed))
    save_parquet(train_out, train)
    evals = coco_captions(coco, str(p.coco_annotations), str(p.coco_images), int(p.n_eval), int(p.seed))
    missing = [q for q in evals.path.head(10) if not (Path(coco) / q).is_file()]
    if missing:
        raise ArtifactError(f"COCO images missing under {coco}: {', '.join(missing)}; rerun instaflow_fetch for coco")
    save_parquet(eval_out, evals)
    log.info(f"{len(train)} training prompts from {len(text)} LAION captions; {len(evals)} COCO captions")
    return {"train": len(train), "eval": len(evals)}


if __name__ == "__main__":
    run(main, "instaflow", "prompts")
