"""Phase `fetch` (full scale only): asd's real inputs, each asset into its own folder, with the
fetcher InstaFlow's full scale uses (Hugging Face snapshots resolved to a commit, URL lists
resumable and checked against sha256 where params pin one, or a folder the user supplies as
`local_dir`); <dir>.lock.json records every file's SHA-256.

    python -m steps.asd.full.fetch scale=full io.cache=data/asd/downloads io.sd21=data/asd/sd21
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
        spec = assets[name]
        if spec["kind"] == "files" and not spec.get("files") and not spec.get("local_dir"):
            raise ConfigError(f"asset {name} has no download source: set full.assets.{name}.local_dir to your copy")
        dest = Path(cfg.io[name])
        log.info(f"fetching {name} into {dest}")
        lock = fetch_asset(name, spec, dest, Path(cache) / name)
        write_json(f"{dest}.lock.json", lock)
        out[name] = len(lock["files"])
    return out


if __name__ == "__main__":
    run(main, "asd", "fetch")
