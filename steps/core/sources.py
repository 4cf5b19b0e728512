"""The source files a step depends on: its module and every `steps.*` module it imports,
transitively. Rules list them as inputs, so editing shared code (say steps/nn/velocity.py)
reruns exactly the rules whose steps import it — for Snakemake and for DVC alike.

Read with `ast`, never imported: the Snakefile calls this while parsing, and importing the
steps would import torch.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from steps.core.config import repo_root


def module_file(module: str, root: Path) -> Path | None:
    """steps.a.b → steps/a/b.py or steps/a/b/__init__.py (None when not in the checkout)."""
    base = root.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


@functools.cache
def _imports(path: Path, module: str) -> tuple[str, ...]:
    """The `steps.*` modules a file imports (absolute or relative), package `__init__`s included."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            found.append(parent)
            found += [f"{parent}.{a.name}" for a in node.names]  # `from steps.nn import fid`
    return tuple(m for m in found if m == "steps" or m.startswith("steps."))


def sources(*modules: str, root: Path | None = None) -> list[str]:
    """Relative paths of `modules` and everything under `steps.` they import, sorted."""
    root = root or repo_root()
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        path = module_file(mod, root)
        if path is None:
            continue  # a name imported from a module (`from steps.nn.fid import fid`), not a module
        seen[mod] = path
        todo += [m for m in _imports(path, mod) if m not in seen]
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
    return sorted(str(p.relative_to(root)) for p in seen.values())
