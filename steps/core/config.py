"""Hydra composition of params/ for paper × scale × overrides, validated before any work starts.

    from steps.core.config import compose
    cfg = compose("instaflow", "mini", ["reflow.steps=2000"], phase="reflow")

The tree (DESIGN.md): params/config.yaml holds the core keys; params/scale/<scale>.yaml the
per-scale defaults; params/<paper>/base.yaml the paper's mechanism and <scale>.yaml what that
scale changes. `reads:` in base.yaml lists, per phase, the sections the phase may read: a step
sees only those (anything else raises), and the same view is its rerun trigger in Snakemake,
so a change to one section reruns exactly the phases that read it.

Overrides are plain `key=value` (Hydra grammar). Unknown keys and values of the wrong type are
refused with one line naming what is valid, before Hydra sees them; values are then checked
against the checks declared next to them (steps.core.checks: ranges, choices, non-empty lists).

Hydra composes a paper × scale × overrides once: the resolved, checked tree is cached under
.cache/paperzoo-config/, keyed by the content of every file it depends on, so the Snakefile
(46 papers at each parse) and every step's start-up read it back as plain JSON. The per-job
overrides the rules pass (seed=, threads=, ...: FAST_KEYS) are applied to that tree directly.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from steps.core import checks
from steps.core.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

SCALES = ("smoke", "mini", "full")
# Keys every step sees whatever its phase reads.
CORE_KEYS = ("paper", "scale", "seed", "seeds", "device", "threads", "progress", "ckpt", "dist", "io", "resources")
# Keys that change how a step runs but not what it computes: kept out of rerun triggers.
# The seed of a per-seed job is part of its output path, so it is not a trigger either.
OPERATIONAL_KEYS = ("device", "threads", "progress", "ckpt", "dist", "io", "resources", "seed", "seeds")


def repo_root() -> Path:
    """The checkout that holds params/: $PAPERZOO_ROOT, else the working directory, else the
    directory above this package (an editable install)."""
    return _repo_root(os.environ.get("PAPERZOO_ROOT"), os.getcwd())


@functools.lru_cache(maxsize=8)
def _repo_root(env: str | None, cwd: str) -> Path:
    for cand in (env, cwd, Path(__file__).resolve().parents[2]):
        if cand and (Path(cand) / "params" / "config.yaml").is_file():
            return Path(cand).resolve()
    raise ConfigError("cannot find params/config.yaml: run from the paperzoo checkout or set PAPERZOO_ROOT")


def params_dir() -> Path:
    return repo_root() / "params"


def papers() -> tuple[str, ...]:
    """Every paper with a params/<paper>/base.yaml."""
    return _papers(params_dir())


@functools.lru_cache(maxsize=8)
def _papers(root: Path) -> tuple[str, ...]:
    return tuple(sorted(p.parent.name for p in root.glob("*/base.yaml")))


def _omegaconf(x) -> bool:
    """Is `x` an OmegaConf container? (without importing omegaconf for plain trees)"""
    return type(x).__module__.startswith("omegaconf")


def plain(x):
    """A plain tree (dicts, lists) from an OmegaConf container (resolved) or an `attrs` tree."""
    if _omegaconf(x):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(x, resolve=True)
    if isinstance(x, Attrs):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x


class Attrs(dict):
    """A plain config tree with attribute access (`cfg.teacher.steps`), for the Snakefile: it
    reads 46 papers' configs at every parse, and plain dicts cost nothing to build."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def attrs(tree):
    """`tree` with every mapping an `Attrs` (lists of mappings included)."""
    if isinstance(tree, dict):
        return Attrs({k: attrs(v) for k, v in tree.items()})
    if isinstance(tree, list):
        return [attrs(v) for v in tree]
    return tree


def _check_choice(kind: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {kind} '{value}'; valid: {', '.join(valid)}")


# Top-level keys applied after the cached composition, on the plain tree: the rules pass them
# on every step's command line (seed=, threads=), and they never change what a step computes
# (no phase reads them), so they must not cost a Hydra composition each.
FAST_KEYS = ("seed", "threads", "device", "progress", "ckpt", "dist")


def _key(text: str) -> str:
    """The dotted key of an override `key=value`, refusing anything but plain key=value."""
    key, eq, _ = text.partition("=")
    if not eq or key.startswith(("+", "~")) or not key:
        raise ConfigError(f"override '{text}': only key=value is allowed (no +, ++ or ~)")
    return key


def _scalar(text: str):
    """The value of a fast override: YAML's reading, plus numbers like 1e-3 that YAML 1.1 reads
    as strings (Hydra's grammar reads them as floats)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _plan_files(paper: str, scale: str) -> list[Path]:
    """Every file a composed config depends on: params/config.yaml, the scale file, the paper's
    files (values and checks), the core checks, and the code that composes and checks."""
    root = params_dir()
    here = Path(__file__).resolve().parent
    files = [root / "config.yaml", root / "scale" / f"{scale}.yaml", root / "checks.yaml",
             here / "config.py", here / "checks.py"]
    return files + sorted((root / paper).glob("*.yaml"))


def _plan_cache(paper: str, scale: str, overrides: tuple[str, ...]) -> Path | None:
    if os.environ.get("PAPERZOO_NO_CONFIG_CACHE"):
        return None
    h = hashlib.sha256(json.dumps([paper, scale, list(overrides)]).encode())
    for f in _plan_files(paper, scale):
        h.update(str(f.name).encode())
        with contextlib.suppress(FileNotFoundError):
            h.update(f.read_bytes())
    return repo_root() / ".cache" / "paperzoo-config" / f"{paper}-{scale}-{h.hexdigest()[:20]}.json"


def _plan(paper: str, scale: str, overrides: tuple[str, ...]) -> str:
    return _plan_in(repo_root(), paper, scale, overrides)


def clear_cache() -> None:
    """Forget the configs composed in this process (the disk cache sees edits by itself)."""
    _plan_in.cache_clear()
    _papers.cache_clear()


@functools.lru_cache(maxsize=256)
def _plan_in(root: Path, paper: str, scale: str, overrides: tuple[str, ...]) -> str:
    """The composed, resolved and checked config of paper × scale × (non-fast) overrides, as a
    plain tree. Hydra composes it once; the result is cached on disk under .cache/, keyed by the
    content of every file it depends on (`_plan_files`), so that the Snakefile and every step
    read it back in a millisecond and any edit recomposes."""
    cache = _plan_cache(paper, scale, overrides)
    if cache is not None and cache.exists():
        with contextlib.suppress(OSError, ValueError):
            text = cache.read_text()
            json.loads(text)  # a truncated entry is composed again
            return text
    if overrides:
        validate_overrides(json.loads(_plan(paper, scale, ())), overrides, paper)
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(_hydra_compose(paper, scale, overrides), resolve=True)
    checks.validate(cfg, paper)
    text = json.dumps(cfg)
    if cache is not None:
        from steps.core.io import write_text

        with contextlib.suppress(OSError):  # a read-only checkout simply has no cache
            write_text(cache, text)
    return text


def resolve(paper: str, scale: str = "mini", overrides: Sequence[str] = ()) -> dict:
    """The config of `paper` at `scale` with `overrides`, as a plain (mutable) tree: Hydra's
    composition, cached, then the fast overrides (FAST_KEYS) applied and checked."""
    _check_choice("paper", paper, papers())
    _check_choice("scale", scale, SCALES)
    slow, fast = [], []
    for text in dict.fromkeys(overrides):  # in order, each once
        (fast if _key(text).split(".")[0] in FAST_KEYS else slow).append(text)
    cfg = json.loads(_plan(paper, scale, tuple(slow)))
    if fast:
        parsed = [(text, _key(text), _scalar(text.partition("=")[2])) for text in fast]
        _validate_parsed(cfg, parsed, paper)
        for _, key, value in parsed:
            *parents, last = key.split(".")
            node = cfg
            for part in parents:
                node = node[part]
            node[last] = value
        checks.validate(cfg, paper, only={key for _, key, _ in parsed})
    return cfg


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
    if isinstance(v, list) or (_omegaconf(v) and hasattr(v, "append")):
        return "list"
    if isinstance(v, dict) or _omegaconf(v):
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


def validate_overrides(reference: Mapping, overrides: Iterable[str], paper: str) -> None:
    """Refuse unknown keys and wrong types, naming what is valid. `reference` is the composed
    config without overrides (a plain tree or a DictConfig)."""
    _validate_parsed(plain(reference), _parse_overrides(overrides), paper)


def _validate_parsed(tree: Mapping, parsed, paper: str) -> None:
    for text, key, value in parsed:
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
        if value is None and checks.admits_null(key, paper):
            continue  # the key's check says null is valid (e.g. "none" for an optional arm)
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
    """The resolved, read-only config (an OmegaConf DictConfig) for `paper` at `scale` with `overrides` applied.

    With `phase`, only the core keys and the sections listed under `reads.<phase>` are kept.
    """
    tree = resolve(paper, scale, overrides)
    if phase is not None:
        tree = phase_view(tree, phase)
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(tree)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def phase_view(cfg: Mapping, phase: str) -> dict:
    """Keep the core keys and the sections `reads.<phase>` names (DESIGN: one phase, its params)."""
    data = plain(cfg)
    reads = data.get("reads") or {}
    if phase not in reads:
        raise ConfigError(f"{data['paper']} has no phase '{phase}'; phases: {', '.join(reads)}")
    read = list(reads[phase])
    keep = [k for k in CORE_KEYS if k in data] + [k for k in read if k not in CORE_KEYS]
    missing = [k for k in read if k not in data]
    if missing:
        raise ConfigError(f"{data['paper']}: reads.{phase} names sections that do not exist: {', '.join(missing)}")
    view = {k: data[k] for k in keep}  # shares the sections: callers copy (OmegaConf) or dump them
    view["phase"] = phase
    view["phase_reads"] = read
    return view


def semantic(cfg: Mapping) -> dict:
    """What a step computes from: the config less its operational keys (threads, paths, ...),
    except those its phase lists in `reads` (e.g. `seeds` for a step that reads every seed)."""
    data = plain(cfg)
    read = set(data.get("phase_reads") or [])
    return {k: v for k, v in data.items() if k not in OPERATIONAL_KEYS or k in read}


def split_overrides(paper: str, scale: str, overrides: Sequence[str], phase: str) -> tuple[list[str], list[str]]:
    """(the overrides that change what `phase` computes, the operational ones: threads, device,
    progress, ckpt, dist). Overrides of sections the phase does not read are in neither: passing them
    would change nothing but its command line."""
    reads = set(resolve(paper, scale)["reads"][phase])
    mine, operational = [], []
    for text in overrides:
        top = _key(text).split(".")[0]
        if top in reads:
            mine.append(text)
        elif top in OPERATIONAL_KEYS and top not in ("seed", "seeds", "io", "resources"):
            operational.append(text)
    return mine, operational


def config_hash(cfg: Mapping) -> str:
    """A short, stable hash of `semantic(cfg)`: equal configs, equal hashes."""
    blob = json.dumps(semantic(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def trigger(paper: str, scale: str, overrides: Sequence[str], phase: str) -> str:
    """The rerun trigger Snakemake stores for a rule: the phase's semantic config as JSON."""
    view = phase_view(resolve(paper, scale, overrides), phase)
    return json.dumps(semantic(view), sort_keys=True, separators=(",", ":"))
