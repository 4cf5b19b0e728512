"""Claims: params/<paper>/claims.yaml states the paper's numbers and its claims as comparisons
over our metrics, each claim with when it was registered relative to the runs; this module
evaluates them.

A check is an expression over metric paths, `<metric file>.<key>.<key>...`, numbers, + - * /,
comparisons, `and`/`or`/`not`, and min()/max()/abs(), e.g.

    fid.one_step.instaflow_long.mean < fid.one_step.rf1_distill_long.mean

Verdicts: `holds`, `fails`, `not run` (a metric it names is missing) and `not testable at
<scale>` (the claim lists the scales a miniature can inform). Nothing here knows any paper.

Kinds: `claim` (a finding about the paper: counted in "claims holding"), `sanity` (a check of
our machinery) and `accounting` (arithmetic of the setup, e.g. a size ratio from bit widths:
shown, never counted as a finding). Each claim records when it was registered relative to the
runs (`registered: {when: before-mini | after-pilot | after-mini | before-full, commit: ...}`)
and every later change of its check or of the model behind it (`history:`);
tests/test_claims_history.py checks both against git. A change of the model may name metrics
files that hold the model before (and after) it, recomputed by the pipeline
(`measured_before: {balmer: balmer_registered}`): the verdicts on both sides are then measured,
not remembered (measured_history).
"""

from __future__ import annotations

import ast
import functools
import json
import operator
from dataclasses import dataclass
from pathlib import Path

import yaml

from steps.core.config import repo_root
from steps.core.errors import ConfigError

HOLDS, FAILS, NOT_RUN = "holds", "fails", "not run"
KINDS = ("claim", "sanity", "accounting")
WHEN = {"before-mini": "before the first mini run", "after-pilot": "after a pilot run",
        "after-mini": "after the first mini run", "before-full": "before the first full run"}

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCS = {"min": min, "max": max, "abs": abs}


class MissingMetric(LookupError):
    """A path the check names is not in the metrics."""


@dataclass(frozen=True)
class Verdict:
    id: str
    statement: str
    check: str
    verdict: str
    values: dict  # path -> value for every metric path the check names (None if missing)
    kind: str = "claim"
    source: str = ""
    note: str = ""
    registered: dict | None = None
    history: tuple = ()
    measured: tuple = ()  # per history entry: None, or the verdicts measured before/after (measured_history)

    @property
    def registration(self) -> str:
        """`before mini · 4c5a2f1` and, when it changed since, `changed 2× (last: reason)`."""
        if not self.registered:
            return "not recorded"
        when = self.registered["when"].replace("-", " ")
        text = f"{when} · {self.registered['commit'][:7]}"
        if self.history:
            text += f"; changed {len(self.history)}× (last {self.history[-1]['date']}: {self.history[-1]['reason']})"
        return text


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads((repo_root() / "workflow" / "schemas" / "claims.schema.json").read_text())


def load(path: str | Path) -> dict:
    """Read and validate a claims.yaml; every check must parse."""
    import jsonschema

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
        jsonschema.validate(data, _schema())
    except FileNotFoundError:
        raise ConfigError(f"missing claims file {path}") from None
    except (yaml.YAMLError, jsonschema.ValidationError) as e:
        msg = getattr(e, "message", str(e)).splitlines()[0]
        raise ConfigError(f"{path}: {msg}") from None
    ids = [c["id"] for c in data["claims"]] + [n["id"] for n in data["numbers"]]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(f"{path}: duplicate ids {', '.join(sorted(dup))}")
    for c in data["claims"]:
        paths(c["check"])  # raises ConfigError when it does not parse
    return data


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _parse(check: str) -> ast.Expression:
    try:
        tree = ast.parse(check, mode="eval")
    except SyntaxError as e:
        raise ConfigError(f"check '{check}' does not parse: {e.msg}") from None
    for node in ast.walk(tree):
        ok = isinstance(
            node,
            ast.Expression | ast.Compare | ast.BinOp | ast.UnaryOp | ast.BoolOp | ast.Constant
            | ast.Name | ast.Attribute | ast.Call | ast.Load | ast.And | ast.Or | ast.Not | ast.USub,
        ) or type(node) in _BINOPS or type(node) in _CMPOPS
        if not ok:
            raise ConfigError(f"check '{check}': {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise ConfigError(f"check '{check}': only min(), max() and abs() may be called")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float)):
            raise ConfigError(f"check '{check}': constant {node.value!r} is not a number")
    return tree


def paths(check: str) -> list[str]:
    """The metric paths a check names, in order."""
    out = []

    def visit(node):
        if isinstance(node, ast.Call):
            for a in node.args:
                visit(a)
            return
        dotted = _dotted(node)
        if dotted is not None:
            out.append(dotted)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(_parse(check).body)
    return out


def lookup(metrics: dict, path: str):
    """Resolve `file.key.key` in {file: values-tree}."""
    node = metrics
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise MissingMetric(path)
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise MissingMetric(path)
    return node


def evaluate(check: str, metrics: dict) -> bool:
    """True or False; MissingMetric when a named metric is absent."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        dotted = _dotted(node)
        if dotted is not None:
            return lookup(metrics, dotted)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else (not v)
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.BoolOp):
            vals = [ev(v) for v in node.values]  # evaluate all: a missing metric is never hidden
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = ev(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ConfigError(f"check '{check}': cannot evaluate {type(node).__name__}")

    return bool(ev(_parse(check)))


def judge(check: str, scales, metrics: dict, scale: str) -> tuple[str, dict]:
    """(verdict, {path: value or None}) of one check at `scale`."""
    vals = {}
    for p in paths(check):
        try:
            vals[p] = lookup(metrics, p)
        except MissingMetric:
            vals[p] = None
    if scale not in scales:
        return f"not testable at {scale}", vals
    if any(v is None for v in vals.values()):
        return NOT_RUN, vals
    return (HOLDS if evaluate(check, metrics) else FAILS), vals


def measured_history(claim: dict, metrics: dict, scale: str) -> tuple[dict | None, ...]:
    """For each history entry of a claim, the verdicts of its check measured on the model before
    and after that change, where the entry names the metrics that hold them: `measured_before`
    (and `measured_after`, else the current metrics) map a metrics file the check reads to the
    file holding the same values for that model, e.g. {balmer: balmer_registered}. Each entry
    is judged with the check in force at the time (the `was` of the next change of the check).
    None for an entry that names no measured models, and for every entry at a scale the claim
    is not testable at."""
    history = claim.get("history") or ()
    if scale not in claim["scales"]:
        return (None,) * len(history)
    out = []
    for k, h in enumerate(history):
        if not h.get("measured_before"):
            out.append(None)
            continue
        check = next((later["was"] for later in history[k + 1:] if later.get("was")), claim["check"])
        sides = {}
        for side in ("before", "after"):
            swap = h.get(f"measured_{side}") or {}
            view = {name: tree for name, tree in metrics.items() if name not in swap}
            view.update({name: metrics[alt] for name, alt in swap.items() if alt in metrics})
            verdict, vals = judge(check, claim["scales"], view, scale)
            sides[side] = {"verdict": verdict, "values": vals, "from": dict(swap)}
        out.append(sides)
    return tuple(out)


def verdicts(claims: dict, metrics: dict, scale: str) -> list[Verdict]:
    """A verdict for every claim in a loaded claims.yaml, given {file: values} at `scale`."""
    out = []
    for c in claims["claims"]:
        verdict, vals = judge(c["check"], c["scales"], metrics, scale)
        out.append(
            Verdict(
                id=c["id"], statement=c["statement"], check=c["check"], verdict=verdict, values=vals,
                kind=c.get("kind", "claim"), source=c["source"], note=c.get("why_not", ""),
                registered=c.get("registered"), history=tuple(c.get("history") or ()),
                measured=measured_history(c, metrics, scale),
            )
        )
    return out
