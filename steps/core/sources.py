"""The source files a step depends on: its module and every `steps.*` module it imports,
transitively. Rules list them as inputs, so editing shared code (say steps/nn/velocity.py)
reruns exactly the rules whose steps import it — for Snakemake and for DVC alike.

Read with `ast`, never imported: the Snakefile calls this while parsing, and importing the
steps would import torch. What each file imports is cached on disk (.cache/paperzoo-imports.json,
keyed by path, size and mtime), so a parse reads a few hundred files' stat, not their syntax.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import os
from pathlib import Path

from steps.core.config import repo_root


@functools.cache
def module_file(module: str, root: Path) -> Path | None:
    """steps.a.b → steps/a/b.py or steps/a/b/__init__.py (None when not in the checkout)."""
    base = root.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


class _DiskCache:
    """{path: [size, mtime_ns, module, imports]} for one checkout, saved when it changed."""

    def __init__(self, root: Path):
        self.file = root / ".cache" / "paperzoo-imports.json"
        self.data: dict = {}
        self.dirty = False
        with contextlib.suppress(OSError, ValueError):
            self.data = json.loads(self.file.read_text())

    def get(self, path: Path, module: str) -> tuple[str, ...]:
        st = path.stat()
        key = str(path)
        hit = self.data.get(key)
        if hit and hit[:3] == [st.st_size, st.st_mtime_ns, module]:
            return tuple(hit[3])
        found = _parse_imports(path, module)
        self.data[key] = [st.st_size, st.st_mtime_ns, module, list(found)]
        self.dirty = True
        return found

    def save(self) -> None:
        if self.dirty:
            from steps.core.io import write_text

            with contextlib.suppress(OSError):  # a read-only checkout has no cache
                write_text(self.file, json.dumps(self.data))
            self.dirty = False


@functools.cache
def _cache(root: Path) -> _DiskCache:
    return _DiskCache(root)


def _imports(path: Path, module: str, root: Path) -> tuple[str, ...]:
    if os.environ.get("PAPERZOO_NO_CONFIG_CACHE"):
        return _parse_imports(path, module)
    return _cache(root).get(path, module)


def _parse_imports(path: Path, module: str) -> tuple[str, ...]:
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
    return list(_sources(modules, root or repo_root()))


@functools.lru_cache(maxsize=1024)
def _sources(modules: tuple[str, ...], root: Path) -> tuple[str, ...]:
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
        todo += [m for m in _imports(path, mod, root) if m not in seen]
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
    if not os.environ.get("PAPERZOO_NO_CONFIG_CACHE"):
        _cache(root).save()
    return tuple(sorted(str(p.relative_to(root)) for p in seen.values()))
