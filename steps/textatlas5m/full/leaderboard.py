"""Phase `leaderboard` (full scale): every model's scores in one metrics file, the table the
paper reports (OCR accuracy / F1 / CER, CLIP score, FID per TextAtlasEval subset).

    python -m steps.textatlas5m.full.leaderboard scale=full io.scores=results/textatlas5m/scores \
        io.out=results/textatlas5m/leaderboard.json
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.io import read_json


def main(cfg: DictConfig) -> dict:
    scores, out = need_io(cfg, "scores", "out")
    t0 = time.monotonic()
    table = {m: read_json(Path(scores) / f"{m}.json", "model scores")["subsets"] for m in cfg.full.models}
    metrics.write(out, cfg, "leaderboard", "TextAtlasEval: official OCR metrics, CLIP score and FID per model and subset",
                  table, time.monotonic() - t0, "cpu")
    return table


if __name__ == "__main__":
    run(main, "textatlas5m", "leaderboard")
