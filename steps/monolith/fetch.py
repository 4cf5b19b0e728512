"""Phase `fetch` (full scale): the GroupLens MovieLens release (ml-25m), checksummed.

Downloads the zip (resumable; sha256/size checked when params give them), extracts
ratings.csv and movies.csv flat into `io.out`, and records the digest it got in `io.lock`
(copy it into params/monolith/full.yaml to pin it; a checksum is never invented).
MovieLens data: GroupLens research-use terms (no redistribution; cite Harper & Konstan 2015).

    python -m steps.monolith.fetch scale=full io.cache=data/monolith/downloads io.out=data/monolith/ml-25m io.lock=data/monolith/ml-25m.lock.json
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from omegaconf import DictConfig

from steps.core import fetch
from steps.core.cli import need_io, run
from steps.core.io import write_json
from steps.core.progress import log

MEMBERS = ("*/ratings.csv", "*/movies.csv")


def main(cfg: DictConfig) -> dict:
    cache, out, lock = need_io(cfg, "cache", "out", "lock")
    g = cfg.movielens.grouplens
    url = str(g.url)
    archive = Path(cache) / url.rsplit("/", 1)[-1]
    digest = fetch.download(url, archive, sha256=g.sha256, size=g.size, progress_every_s=float(cfg.progress.every_s))
    out = Path(out)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        names = fetch.unzip(archive, tmp, MEMBERS)
        stage = Path(tmp) / "flat"
        stage.mkdir()
        for n in names:
            shutil.move(str(Path(tmp) / n), stage / Path(n).name)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    write_json(lock, {"url": url, "sha256": digest, "size": archive.stat().st_size, "files": fetch.hash_tree(out)})
    log.info(f"MovieLens release {url} -> {out} (sha256 {digest})")
    return {"sha256": digest}


if __name__ == "__main__":
    run(main, "monolith", "fetch")
