"""Phase `fetch` (full scale only): asd's real inputs, each asset into its own folder, with the
fetcher InstaFlow's full scale uses (Hugging Face snapshots resolved to a commit, URL lists
resumable and checked against sha256 where params pin one, or a folder the user supplies as
`local_dir`); <dir>.lock.json records every file's SHA-256.

    python -m steps.asd.full.fetch scale=full io.cache=data/asd/downloads io.sd21=data/asd/sd21
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import run
from steps.instaflow.sd.fetch import fetch_assets


def main(cfg: DictConfig) -> dict:
    return fetch_assets(cfg, OmegaConf.to_container(cfg.full.assets, resolve=True))


if __name__ == "__main__":
    run(main, "asd", "fetch")
