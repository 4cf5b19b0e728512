"""Value checks of the parameters: ranges, choices and non-empty lists, checked when a config is
composed, so that a bad value stops the run before any job starts (and before Snakemake deletes
the output it would have rebuilt).

They are declared next to the values, one JSON Schema per key (https://json-schema.org):
`params/checks.yaml` for the core keys every paper has, `params/<paper>/checks.yaml` for the
paper's own. A key may be a dotted path or an fnmatch pattern over dotted paths (`*.batch`:
every key named batch); a paper's entry replaces a core entry with the same key. Example:

    teacher.steps: {type: integer, minimum: 1}
    "*.precision": {enum: [auto, fp32, bf16]}
    seeds: {type: array, minItems: 1, items: {type: integer, minimum: 0}}

A violation is one line that names the key, the value and what is valid:

    error: instaflow: teacher.steps = 0 is not valid: expected an integer ≥ 1

    python -c "from steps.core import checks; print(checks.load('instaflow'))"
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from steps.core.errors import ConfigError

CORE_FILE = "checks.yaml"
# libyaml's loader where PyYAML has it: every step start reads these files (pure Python: ~24 ms)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def files(params: Path, paper: str) -> list[Path]:
    """The checks files that apply to `paper`, core first."""
    return [p for p in (params / CORE_FILE, params / paper / CORE_FILE) if p.is_file()]


def load(paper: str, params: Path | None = None) -> dict[str, dict]:
    """{key pattern: JSON Schema} for `paper`: the core checks, then the paper's."""
    if params is None:
        from steps.core.config import params_dir

        params = params_dir()
    merged: dict[str, dict] = {}
    for f in files(params, paper):
        data = yaml.load(f.read_text(), Loader=_LOADER) or {}
        if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
            raise ConfigError(f"{f}: expected a mapping of key: {{JSON Schema}}")
        merged.update({str(k): dict(v) for k, v in data.items()})
    return merged


def paths(tree: Mapping, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Every (dotted path, value) of a config tree, sections included; lists are values."""
    for k, v in tree.items():
        path = f"{prefix}{k}"
        yield path, v
        if isinstance(v, Mapping):
            yield from paths(v, path + ".")


def _matches(pattern: str, path: str) -> bool:
    return pattern == path or fnmatch.fnmatchcase(path, pattern)


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str):
    import fastjsonschema

    try:
        return fastjsonschema.compile(json.loads(schema_json))
    except fastjsonschema.JsonSchemaDefinitionException as e:
        raise ConfigError(f"invalid check {schema_json}: {e}") from None


def _ok(schema: dict, value) -> bool:
    import fastjsonschema

    try:
        _validator(json.dumps(schema, sort_keys=True))(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def admits_null(key: str, paper: str) -> bool:
    """Does a check of `key` accept null? (an override may then set null where the shipped
    value is not: the type check alone would refuse it)"""
    found = [schema for pattern, schema in load(paper).items() if _matches(pattern, key)]
    return bool(found) and all(_ok(schema, None) for schema in found)


def violations(cfg: Mapping, checks: Mapping[str, dict], only: set[str] | None = None) -> list[str]:
    """One line per value of `cfg` that breaks its check (restricted to the dotted paths in
    `only`, and what is under them, when given)."""
    out = []
    for path, value in paths(cfg):
        if only is not None and not any(path == o or path.startswith(o + ".") for o in only):
            continue
        for pattern, schema in checks.items():
            if _matches(pattern, path) and not _ok(schema, value):
                out.append(f"{path} = {json.dumps(value)} is not valid: expected {describe(schema)}")
    return out


def validate(cfg: Mapping, paper: str, checks: Mapping[str, dict] | None = None,
             only: set[str] | None = None) -> None:
    """Raise a one-line ConfigError for the first value that breaks its check."""
    checks = load(paper) if checks is None else checks
    bad = violations(cfg, checks, only)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ConfigError(f"{paper}: {bad[0]}{more}")


def unmatched(cfg: Mapping, checks: Mapping[str, dict]) -> list[str]:
    """Check keys that name no key of `cfg`: a stale or misspelt check."""
    all_paths = [p for p, _ in paths(cfg)]
    return [k for k in checks if not any(_matches(k, p) for p in all_paths)]


_TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
          "array": "a list", "object": "a mapping", "null": "null"}
_PLURAL = {"an integer": "integers", "a number": "numbers", "a string": "strings", "a list": "lists",
           "a mapping": "mappings", "a value": "values", "a non-empty string": "non-empty strings",
           "one of": "values from"}


def describe(schema: Mapping) -> str:
    """A short English reading of a check: `an integer ≥ 1`, `one of auto, fp32, bf16`."""
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in schema["enum"])
    if "const" in schema:
        return f"exactly {json.dumps(schema['const'])}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(describe(s) for s in schema[key])
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    parts = [" or ".join(_TYPES.get(t, t) for t in types if t != "null")] if any(t != "null" for t in types) else []
    if not parts:
        parts = ["a value"]
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in schema:
            bounds.append(f"{sign} {schema[key]}")
    if bounds:
        parts.append(" and ".join(bounds))
    if "multipleOf" in schema:
        parts.append(f"divisible by {schema['multipleOf']}")
    if "minItems" in schema or "maxItems" in schema:
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo == 1 and hi is None:
            parts[0] = "a non-empty list"
        elif lo == hi:
            parts.append(f"with {lo} items")
        else:
            parts.append(f"with {lo if lo is not None else 0}–{hi if hi is not None else '∞'} items")
    if "minLength" in schema and schema["minLength"] >= 1:
        parts[0] = "a non-empty string"
    if "pattern" in schema:
        parts.append(f"matching {schema['pattern']}")
    if "items" in schema and isinstance(schema["items"], Mapping):
        item = describe(schema["items"])
        for one, many in _PLURAL.items():
            if item.startswith(one + " ") or item == one:
                item = many + item[len(one):]
                break
        parts.append(f"of {item}")
    if schema.get("uniqueItems"):
        parts.append("without repeats")
    if "null" in types:
        parts.append("or null")
    return " ".join(parts)
