"""Hydra composition of params/ for paper × scale × overrides, validated before any work starts.

    from steps.core.config import compose
    cfg = compose("instaflow", "mini", ["reflow.steps=2000"], phase="reflow")

The tree (DESIGN.md): params/config.yaml holds the core keys; params/scale/<scale>.yaml the
per-scale defaults; params/<paper>/base.yaml the paper's mechanism and <scale>.yaml what that
scale changes. `reads:` in base.yaml lists, per phase, the sections the phase may read: a step
sees only those (anything else raises), and the same view is its rerun trigger in Snakemake,
so a change to one section reruns exactly the phases that read it.

Overrides are plain `key=value` (Hydra grammar). Unknown keys and values of the wrong type are
refused with one line naming what is valid, before Hydra sees them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from steps.core.errors import ConfigError

SCALES = ("smoke", "mini", "full")
# Keys every step sees whatever its phase reads.
CORE_KEYS = ("paper", "scale", "seed", "seeds", "device", "threads", "progress", "ckpt", "dist", "io", "resources")
# Keys that change how a step runs but not what it computes: kept out of rerun triggers.
# The seed of a per-seed job is part of its output path, so it is not a trigger either.
OPERATIONAL_KEYS = ("device", "threads", "progress", "ckpt", "dist", "io", "resources", "seed", "seeds")


def repo_root() -> Path:
    """The checkout that holds params/: $PAPERZOO_ROOT, else the working directory, else the
    directory above this package (an editable install)."""
    for cand in (os.environ.get("PAPERZOO_ROOT"), os.getcwd(), Path(__file__).resolve().parents[2]):
        if cand and (Path(cand) / "params" / "config.yaml").is_file():
            return Path(cand).resolve()
    raise ConfigError("cannot find params/config.yaml: run from the paperzoo checkout or set PAPERZOO_ROOT")


def params_dir() -> Path:
    return repo_root() / "params"


def papers() -> tuple[str, ...]:
    """Every paper with a params/<paper>/base.yaml."""
    root = params_dir()
    return tuple(sorted(p.parent.name for p in root.glob("*/base.yaml")))


def _check_choice(kind: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {kind} '{value}'; valid: {', '.join(valid)}")


@functools.lru_cache(maxsize=64)
def _compose_cached(paper: str, scale: str, overrides: tuple[str, ...]) -> DictConfig:
    """Hydra's composition, memoised on disk: a step's process would otherwise spend ≈0.4 s in
    Hydra for a config the Snakefile composed a moment before. The key covers every file under
    params/ (path, size, mtime), so any edit recomposes."""
    cache = _cache_file(paper, scale, overrides)
    if cache is not None and cache.exists():
        try:
            return OmegaConf.create(json.loads(cache.read_text()))
        except (OSError, ValueError):
            pass  # unreadable cache entry: compose again
    cfg = _hydra_compose(paper, scale, overrides)
    if cache is not None:
        from steps.core.io import write_text

        with contextlib.suppress(OSError):  # a read-only checkout simply has no cache
            write_text(cache, json.dumps(OmegaConf.to_container(cfg, resolve=False)))
    return cfg


def _cache_file(paper: str, scale: str, overrides: tuple[str, ...]) -> Path | None:
    if os.environ.get("PAPERZOO_NO_CONFIG_CACHE"):
        return None
    root = params_dir()
    h = hashlib.sha256(json.dumps([paper, scale, list(overrides)]).encode())
    for f in sorted(root.rglob("*.yaml")):
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return root.parent / ".cache" / "paperzoo-config" / f"{h.hexdigest()[:24]}.json"


def _hydra_compose(paper: str, scale: str, overrides: tuple[str, ...]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(params_dir()), version_base="1.3"):
            cfg = hydra_compose(
                "config",
                overrides=[f"scale={scale}", f"+{paper}@_global_=[base,{scale}]", *overrides],
            )
    except HydraException as e:  # a broken YAML file or an override Hydra cannot apply
        raise ConfigError(f"{paper}/{scale}: {' '.join(str(e).split())}") from None
    cfg.paper = paper
    cfg.scale = scale
    return cfg


def _parse_overrides(overrides: Iterable[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            (ov,) = parser.parse_overrides([text])
        except HydraException:
            raise ConfigError(f"cannot parse override '{text}': expected key=value") from None
        if ov.is_add() or ov.is_delete() or ov.is_force_add():
            raise ConfigError(f"override '{text}': only key=value is allowed (no +, ++ or ~)")
        parsed.append((text, ov.key_or_group, ov.value()))
    return parsed


def _type_name(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list | ListConfig):
        return "list"
    if isinstance(v, dict | DictConfig):
        return "dict"
    return type(v).__name__


def _compatible(ref, new) -> bool:
    """May `new` replace `ref`? ints widen to floats; null and ??? accept anything."""
    if ref is None or ref == "???":
        return True
    rt, nt = _type_name(ref), _type_name(new)
    if rt == nt:
        return True
    return rt == "float" and nt == "int"


def validate_overrides(reference: DictConfig, overrides: Iterable[str], paper: str) -> None:
    """Refuse unknown keys and wrong types, naming what is valid. `reference` is the composed
    config without overrides."""
    tree = OmegaConf.to_container(reference, resolve=False)
    for text, key, value in _parse_overrides(overrides):
        if key in ("paper", "scale"):
            raise ConfigError(f"override '{text}': choose the {key} with {key}=<name>, not as a key")
        parts = key.split(".")
        node = tree
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:i]) or "the top level"
                valid = ", ".join(sorted(node)) if isinstance(node, dict) else "none (not a section)"
                raise ConfigError(f"unknown key '{key}' for {paper}; valid keys at {where}: {valid}")
            node = node[part]
        if not _compatible(node, value):
            raise ConfigError(
                f"{key} expects {_type_name(node)} (default {json.dumps(node)}), "
                f"got {value!r} ({_type_name(value)})"
            )


def compose(
    paper: str,
    scale: str = "mini",
    overrides: Sequence[str] = (),
    phase: str | None = None,
) -> DictConfig:
    """The resolved, read-only config for `paper` at `scale` with `overrides` applied.

    With `phase`, only the core keys and the sections listed under `reads.<phase>` are kept.
    """
    _check_choice("paper", paper, papers())
    _check_choice("scale", scale, SCALES)
    overrides = tuple(overrides)
    if overrides:
        validate_overrides(_compose_cached(paper, scale, ()), overrides, paper)
    cfg = _compose_cached(paper, scale, overrides)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if phase is not None:
        cfg = phase_view(cfg, phase)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def phase_view(cfg: DictConfig, phase: str) -> DictConfig:
    """Keep the core keys and the sections `reads.<phase>` names (DESIGN: one phase, its params)."""
    reads = cfg.get("reads") or {}
    if phase not in reads:
        raise ConfigError(f"{cfg.paper} has no phase '{phase}'; phases: {', '.join(reads)}")
    read = list(reads[phase])
    keep = [k for k in CORE_KEYS if k in cfg] + [k for k in read if k not in CORE_KEYS]
    missing = [k for k in read if k not in cfg]
    if missing:
        raise ConfigError(f"{cfg.paper}: reads.{phase} names sections that do not exist: {', '.join(missing)}")
    data = OmegaConf.to_container(cfg, resolve=True)
    view = OmegaConf.create({k: data[k] for k in keep})
    view.phase = phase
    view.phase_reads = read
    return view


def semantic(cfg: DictConfig) -> dict:
    """What a step computes from: the config less its operational keys (threads, paths, ...),
    except those its phase lists in `reads` (e.g. `seeds` for a step that reads every seed)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    read = set(data.get("phase_reads") or [])
    return {k: v for k, v in data.items() if k not in OPERATIONAL_KEYS or k in read}


def split_overrides(paper: str, scale: str, overrides: Sequence[str], phase: str) -> tuple[list[str], list[str]]:
    """(the overrides that change what `phase` computes, the operational ones: threads, device,
    progress, ckpt, dist). Overrides of sections the phase does not read are in neither: passing them
    would change nothing but its command line."""
    reads = set(compose(paper, scale).reads[phase])
    mine, operational = [], []
    for text, key, _ in _parse_overrides(overrides):
        top = key.split(".")[0]
        if top in reads:
            mine.append(text)
        elif top in OPERATIONAL_KEYS and top not in ("seed", "seeds", "io", "resources"):
            operational.append(text)
    return mine, operational


def config_hash(cfg: DictConfig) -> str:
    """A short, stable hash of `semantic(cfg)`: equal configs, equal hashes."""
    blob = json.dumps(semantic(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def trigger(paper: str, scale: str, overrides: Sequence[str], phase: str) -> str:
    """The rerun trigger Snakemake stores for a rule: the phase's semantic config as JSON."""
    view = compose(paper, scale, overrides, phase=phase)
    return json.dumps(semantic(view), sort_keys=True, separators=(",", ":"))
