"""Phase `prompts` (full scale): TextAtlasEval's parquet files → one table of eval cases
(subset, id, prompt = the annotation with its quoted text, raw_text = the text to render) and the
reference images written as PNG (for FID). Column names are params (full.eval_columns).

    python -m steps.textatlas5m.full.prompts scale=full io.eval=data/textatlas5m/textatlaseval \
        io.out=data/textatlas5m/eval_cases.parquet io.images=data/textatlas5m/reference
"""

from __future__ import annotations

import io
from pathlib import Path

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.io import save_parquet
from steps.core.progress import log


def main(cfg: DictConfig) -> dict:
    import pandas as pd
    import pyarrow.parquet as pq
    from PIL import Image

    src, out, images = need_io(cfg, "eval", "out", "images")
    cols = cfg.full.eval_columns
    rows = {"subset": [], "id": [], "prompt": [], "raw_text": [], "image": []}
    Path(images).mkdir(parents=True, exist_ok=True)
    for subset in cfg.full.subsets:
        files = sorted(Path(src).rglob(f"*{subset}*/**/*.parquet")) or sorted(Path(src).rglob(f"*{subset}*.parquet"))
        if not files:
            raise ArtifactError(f"no parquet files for subset {subset} under {src}; rerun textatlas5m_fetch")
        n = 0
        for f in files:
            t = pq.read_table(f).to_pylist()
            for r in t:
                if cfg.full.per_subset and n >= int(cfg.full.per_subset):
                    break
                rid = f"{subset}_{n:05d}"
                img = r[cols.image]
                data = img.get("bytes") if isinstance(img, dict) else img
                path = Path(images) / f"{rid}.png"
                Image.open(io.BytesIO(data)).convert("RGB").save(path)
                for k, v in (("subset", subset), ("id", rid), ("prompt", r[cols.prompt]), ("raw_text", r[cols.text]),
                             ("image", str(path))):
                    rows[k].append(v)
                n += 1
        log.info(f"{subset}: {n} eval cases")
    save_parquet(out, pd.DataFrame(rows))
    return {"n": len(rows["id"])}


if __name__ == "__main__":
    run(main, "textatlas5m", "prompts")
