"""Phase `fetch` (full scale): one asset of `full.assets` into its folder — TextAtlasEval from
the Hugging Face hub (commit recorded), the CLIP and Inception weights, and every model to
benchmark (`local_dir`: weights the user supplies). The downloader, checksums and lock files are
InstaFlow's (steps.instaflow.sd.fetch.fetch_asset): <dir>.lock.json records every file's SHA-256.

    python -m steps.textatlas5m.full.fetch scale=full io.cache=data/textatlas5m/downloads \
        io.textatlaseval=data/textatlas5m/textatlaseval
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import write_json
from steps.core.progress import log
from steps.instaflow.sd.fetch import fetch_asset


def main(cfg: DictConfig) -> dict:
    (cache,) = need_io(cfg, "cache")
    assets = OmegaConf.to_container(cfg.full.assets, resolve=True)
    names = [k for k in cfg.io if k != "cache"]
    unknown = [k for k in names if k not in assets]
    if unknown or not names:
        raise ConfigError(f"fetch takes io.cache and io.<asset>=<dir> for assets {', '.join(assets)}; "
                          f"got {', '.join(unknown) or 'none'}")
    out = {}
    for name in names:
        dest = Path(cfg.io[name])
        log.info(f"fetching {name} into {dest}")
        lock = fetch_asset(name, assets[name], dest, Path(cache) / name)
        write_json(f"{dest}.lock.json", lock)
        out[name] = len(lock["files"])
    return out


if __name__ == "__main__":
    run(main, "textatlas5m", "fetch")
