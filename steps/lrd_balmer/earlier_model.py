"""Phase `earlier_model`: the Balmer metrics of an earlier spectrum model, recomputed from the same
level populations, so that the report shows the verdicts of a claim before and after each change
of the model behind it as measured numbers (params/lrd_balmer/claims.yaml, history entries with
`measured_before`/`measured_after`). `earlier_models.<name>` in params names the model's
differences from `spectrum` (the line list, occupation probabilities, the bound-free shift);
the output has the layout of balmer.json.

    python -m steps.lrd_balmer.earlier_model scale=mini io.model=registered \
        io.atom=data/lrd_balmer/atomic.json io.levels=data/lrd_balmer/levels \
        io.out=results/lrd_balmer/balmer_registered.json
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.lrd_balmer import hydrogen as hy
from steps.lrd_balmer import spectrum as sp
from steps.lrd_balmer.atomic import load_atom
from steps.lrd_balmer.synthesize import ACCOUNTING, measure, merge


def model_named(cfg: DictConfig, name: str) -> sp.Model:
    """`spectrum` with the differences `earlier_models.<name>` lists."""
    if name not in cfg.earlier_models:
        raise ConfigError(f"io.model={name!r} is not in earlier_models; valid: {', '.join(cfg.earlier_models)}")
    return sp.Model.of(OmegaConf.merge(cfg.spectrum, cfg.earlier_models[name]))


def main(cfg: DictConfig) -> dict:
    name, atom_path, levels_dir, out = need_io(cfg, "model", "atom", "levels", "out")
    model = model_named(cfg, name)
    t0 = time.monotonic()
    atom = hy.Atom(load_atom(atom_path))
    lv = merge(Path(levels_dir), cfg, atom.n)
    balmer, _ = measure(cfg, atom, lv, model)
    metrics.write(out, cfg, f"balmer_{name}", f"balmer.json's metrics under the earlier spectrum model '{name}' "
                  f"({', '.join(f'{k}={v}' for k, v in cfg.earlier_models[name].items())})", balmer, time.monotonic() - t0, "cpu",
                  extra={"model": asdict(model)}, accounting=ACCOUNTING)
    log.info(f"model {name}: fiducial B {', '.join(f'{k}={v:.3f}' for k, v in balmer['fiducial']['B'].items())}")
    return balmer


if __name__ == "__main__":
    run(main, "lrd_balmer", "earlier_model")
