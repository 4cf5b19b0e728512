"""Phase `fetch` (full scale): one asset of `full.assets` into its folder — TextAtlasEval from
the Hugging Face hub (commit recorded), the CLIP and Inception weights, and every model to
benchmark (`local_dir`: weights the user supplies). The downloader, checksums and lock files are
InstaFlow's (steps.instaflow.sd.fetch.fetch_asset): <dir>.lock.json records every file's SHA-256.

    python -m steps.textatlas5m.full.fetch scale=full io.cache=data/textatlas5m/downloads \
        io.textatlaseval=data/textatlas5m/textatlaseval
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import run
from steps.instaflow.sd.fetch import fetch_assets


def main(cfg: DictConfig) -> dict:
    return fetch_assets(cfg, OmegaConf.to_container(cfg.full.assets, resolve=True))


if __name__ == "__main__":
    run(main, "textatlas5m", "fetch")
