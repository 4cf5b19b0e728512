"""Which metric values are arithmetic of the setup, read from the steps' declarations without
running them, and which claims compare only such values.

A step declares values that follow from its config alone (a size ratio from bit widths, call
counts equal by construction) with `metrics.write(..., accounting=...)`. At run time the report
refuses a `claim` with a comparison of only such values (steps.core.report); but a smoke run
writes only the smoke DAG's metrics, and no test runs the full DAG. This module reads the
declarations from the source of every step instead, so that one test covers every paper's
claims at every scale (tests/test_claims.py):

    python -c "from steps.core import declared; print(declared.flagged('asd'))"

A declaration is the `accounting=` argument of a `metrics.write` call: a literal, or a name
(or item) of a module-level constant. Its metrics file is the `.json` name in the call's path
argument, else the metric name (an f-string stands for a pattern: `balmer_{name}` is
`balmer_*`). A declaration built at run time cannot be read: `declarations` reports it as
unreadable, and the test fails on it.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
from dataclasses import dataclass
from pathlib import Path

from steps.core import claims as claimslib
from steps.core import metrics as metricslib
from steps.core.config import repo_root

WRITERS = ("metrics", "metricslib")  # how the steps import steps.core.metrics


@dataclass(frozen=True)
class Declaration:
    module: str  # steps.asd.upscale
    line: int
    file: str  # metrics file stem, or a pattern of stems (balmer_*)
    paths: tuple[str, ...] | None  # None: built at run time, not readable here


def _file(call: ast.Call) -> str | None:
    """The metrics file a `metrics.write` call writes: the stem of a `.json` name in its path
    argument, else its metric name (3rd argument), an f-string as a pattern."""
    if call.args:
        for node in ast.walk(call.args[0]):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".json"):
                return Path(node.value).stem
    metric = call.args[2] if len(call.args) > 2 else next((k.value for k in call.keywords if k.arg == "metric"), None)
    if isinstance(metric, ast.Constant) and isinstance(metric.value, str):
        return metric.value
    if isinstance(metric, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "*" for v in metric.values)
    return None


def _paths(node: ast.expr, module: str) -> tuple[str, ...] | None:
    """The declared paths: a literal, or a module-level constant (`ACCOUNTING`,
    `ACCOUNTING["params"]`) read from the imported module; None when built at run time."""
    try:
        return tuple(str(p) for p in ast.literal_eval(node))
    except ValueError:
        pass
    if not all(isinstance(n, ast.Name | ast.Attribute | ast.Subscript | ast.Constant | ast.Load) for n in ast.walk(node)):
        return None
    try:
        value = eval(compile(ast.Expression(node), module, "eval"), vars(importlib.import_module(module)))  # noqa: S307
    except NameError:  # a local variable: built at run time
        return None
    return tuple(str(p) for p in value)


def _module(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def declarations(root: Path | None = None) -> list[Declaration]:
    """Every `metrics.write(..., accounting=...)` under steps/, in file order."""
    root = root or repo_root()
    out = []
    for py in sorted((root / "steps").rglob("*.py")):
        text = py.read_text()
        if "accounting=" not in text:
            continue
        module = _module(py, root)
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "write"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in WRITERS):
                continue
            kw = next((k for k in node.keywords if k.arg == "accounting"), None)
            if kw is not None:
                out.append(Declaration(module, node.lineno, _file(node) or "?", _paths(kw.value, module)))
    return out


def unreadable(decls: list[Declaration]) -> list[str]:
    """`steps.x.y:12` for each declaration this module cannot read (built at run time, or its
    metrics file not named by a literal)."""
    return [f"{d.module}:{d.line}" for d in decls if d.paths is None or d.file == "?"]


def in_scope(decl: Declaration, paper: str) -> bool:
    """A paper's metrics are written by its own steps (steps/<paper>/) and the shared ones."""
    parts = decl.module.split(".")
    return parts[1] == paper or parts[1] in ("core", "nn", "data")


def is_arithmetic(path: str, decls: list[Declaration]) -> bool:
    """Is `file.key...` (a claim's metric path) declared arithmetic of the setup by a step?"""
    file, _, key = path.partition(".")
    return bool(key) and any(d.paths and fnmatch.fnmatchcase(file, d.file) and metricslib.declares(d.paths, key)
                             for d in decls)


def flagged(paper: str, claims: dict | None = None, decls: list[Declaration] | None = None,
            root: Path | None = None) -> list[tuple[str, str, list[str]]]:
    """(claim id, comparison, its paths) for each `kind: claim` of the paper (its claims.yaml,
    or `claims` as loaded) with a comparison whose both sides are declared arithmetic of the
    setup, at any scale."""
    root = root or repo_root()
    claims = claims if claims is not None else claimslib.load(root / "params" / paper / "claims.yaml")
    decls = [d for d in (decls if decls is not None else declarations(root)) if in_scope(d, paper)]
    out = []
    for c in claims["claims"]:
        if c.get("kind", "claim") == "claim":
            out += [(c["id"], text, named)
                    for text, named in claimslib.arithmetic_comparisons(c["check"], lambda p: is_arithmetic(p, decls))]
    return out
