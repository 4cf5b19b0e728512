"""Phase `movielens_data`: MovieLens ratings as a time-ordered click stream (parquet).

At mini the ratings come from the Debian package r-cran-dslabs through an Rscript export (no
network); at full from the GroupLens ml-25m release fetched by `fetch`.

    python -m steps.monolith.movielens_data scale=mini io.out=data/monolith/movielens.parquet
    python -m steps.monolith.movielens_data scale=full io.release=data/monolith/ml-25m io.out=...
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_parquet
from steps.core.progress import log
from steps.data import movielens


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    c = cfg.movielens
    if c.source == "dslabs":
        with tempfile.TemporaryDirectory(dir=Path(out).parent if Path(out).parent.exists() else None) as tmp:
            csv = movielens.export_dslabs(Path(tmp) / "movielens.csv", str(c.rscript))
            df = movielens.read_dslabs_csv(csv)
    elif c.source == "grouplens":
        (release,) = need_io(cfg, "release")
        df = movielens.read_grouplens(release)
    else:
        raise ConfigError(f"movielens.source '{c.source}': valid: dslabs, grouplens")
    stream = movielens.to_stream(df, float(c.positive))
    digest = save_parquet(out, stream)
    info = {"ratings": len(stream), "users": int(stream.user.nunique()), "movies": int(stream.movie.nunique()),
            "positive_rate": float(stream.click.mean()), "days": float(stream.t.max())}
    log.info(f"MovieLens ({c.source}) {info}, sha256 {digest[:12]}")
    return info


if __name__ == "__main__":
    run(main, "monolith", "movielens_data")
