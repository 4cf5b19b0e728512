"""Phase `fetch` (full scale): the Planetoid files of one graph (ind.<name>.{x, y, tx, ty, allx,
ally, graph, test.index}) from the Planetoid repository, resumable; the SHA-256 of each is
recorded in io.lock (copy them into params to pin them — a checksum is never invented).

    python -m steps.teddy.fetch scale=full io.out=data/teddy/planetoid io.lock=data/teddy/planetoid.lock.json
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from steps.core import fetch
from steps.core.cli import need_io, run
from steps.core.io import write_json
from steps.core.progress import log
from steps.data import planetoid


def main(cfg: DictConfig) -> dict:
    out, lock = need_io(cfg, "out", "lock")
    p = cfg.graph.planetoid
    name = str(p.name)
    if name not in planetoid.NAMES:
        from steps.core.errors import ConfigError

        raise ConfigError(f"teddy graph.planetoid.name must be one of {', '.join(planetoid.NAMES)}, got {name!r}")
    pinned = dict(p.get("sha256") or {})
    files = {}
    for part in planetoid.PARTS:
        url = str(p.url).format(name=name, part=part)
        dest = Path(out) / f"ind.{name}.{part}"
        files[dest.name] = {"url": url, "sha256": fetch.download(url, dest, sha256=pinned.get(part),
                                                                 progress_every_s=float(cfg.progress.every_s))}
    planetoid.read(Path(out), name)  # a file that downloads but does not parse fails here, not later
    write_json(lock, {"dataset": name, "files": files})
    log.info(f"Planetoid {name}: {len(files)} files in {out}")
    return {"files": files}


if __name__ == "__main__":
    run(main, "teddy", "fetch")
