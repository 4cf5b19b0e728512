"""Phase `instances`: the regression problems (A, b) with x*, ||Ax* − b||₂, σ_min(A) and the
exact leverage scores, one self-checking .npz per instance (steps.linf_regression.problems).

    python -m steps.linf_regression.instances scale=mini io.out_dir=data/linf_regression/instances
    (full scale, fetched real designs: io.raw=data/linf_regression/raw)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import save_npz
from steps.core.progress import log
from steps.linf_regression import problems
from steps.linf_regression.common import blas_threads, plain, rng_for


def instance_names(cfg: DictConfig) -> list[str]:
    """The instances this scale runs, each one defined in instances.specs."""
    names = [str(n) for n in cfg.instances.use]
    missing = [n for n in names if n not in cfg.instances.specs]
    if missing:
        raise ConfigError(f"instances.use names undefined instance(s) {', '.join(missing)}; "
                          f"defined: {', '.join(cfg.instances.specs)}")
    return names


def build(cfg: DictConfig, name: str, raw: Path | None = None) -> dict[str, np.ndarray]:
    spec = plain(cfg.instances.specs[name])
    table = None
    if spec.get("kind") == "csv":
        from steps.linf_regression.fetch import load_table

        if raw is None:
            raise ConfigError(f"instance {name} reads a fetched table: give io.raw=<dir>")
        table = load_table(spec, raw)
    A, b = problems.make(spec, rng_for(int(cfg.instances.seed), name), table)
    return {"A": A, "b": b, **problems.exact(A, b), "name": np.array(name)}


def main(cfg: DictConfig) -> dict:
    (out_dir,) = need_io(cfg, "out_dir")
    raw = Path(cfg.io["raw"]) if "raw" in cfg.io else None
    out = {}
    with blas_threads(cfg):
        for name in instance_names(cfg):
            arrays = build(cfg, name, raw)
            digest = save_npz(Path(out_dir) / f"{name}.npz", **arrays)
            n, d = arrays["A"].shape
            log.info(f"{name}: n={n} d={d} ||r||={float(arrays['r_norm']):.4g} σ_min={float(arrays['sigma_min']):.4g} "
                     f"max leverage={arrays['leverage'].max():.3f} sha256 {digest[:12]}")
            out[name] = (n, d)
    return out


if __name__ == "__main__":
    run(main, "linf_regression", "instances")
