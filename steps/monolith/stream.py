"""Phase `stream`: the seeded drifting click stream (steps.data.click_stream) as parquet.

    python -m steps.monolith.stream scale=mini io.out=data/monolith/stream.parquet
"""

from __future__ import annotations

from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.io import save_parquet
from steps.core.progress import log
from steps.data import click_stream


def main(cfg: DictConfig) -> dict:
    (out,) = need_io(cfg, "out")
    df = click_stream.generate(cfg.stream, seed=int(cfg.stream.seed))
    digest = save_parquet(out, df)
    info = {"events": len(df), "ctr": float(df.click.mean()), "users": int(df.user.nunique()),
            "items": int(df.item.nunique()), "days": int(df.day.max())}
    log.info(f"stream {info}, sha256 {digest[:12]}")
    return info


if __name__ == "__main__":
    run(main, "monolith", "stream")
