"""Import time of every step module the rules run, and the heavy packages each one pulls in.

    python -m steps.core.bench_imports                      # every registered paper
    python -m steps.core.bench_imports instaflow monolith --repeat 5 --json
    python -m steps.core.bench_imports --module steps.core.index --repeat 1
    PYTHONPROFILEIMPORTTIME=1 snakemake -c2 instaflow --config scale=smoke --forceall
    python -m steps.core.bench_imports --logs logs/instaflow     # what each job imported

Each step runs as its own process (`python -m steps.<paper>.<phase>`), so what its module
imports is paid by every job. The step modules are those the rules name (`-m steps.…` and
`code("steps.…")` in workflow/rules/<paper>.smk and <paper>_full.smk, the report and index of
report.smk) plus each paper's figures module (`report.figures`, imported by its report). Each is
imported in a fresh interpreter under `python -X importtime` (the minimum over --repeat runs);
the table gives the import time, the process's wall time (interpreter start-up included), the
heaviest packages by their own import time, and a flag where a heavy package is imported while
loading a step whose own source never imports it (it comes in through another module; the step
may not need it). The flag is a hint to check, not a verdict: a step that trains through a shared
module needs torch without naming it. `--json` writes the rows under benchmarks/.

A module's import is not all a job imports: functions import more while it runs (torch.optim's
first step imports torch._dynamo, torch.fx imports sympy). `--logs DIR` reads the `-X importtime`
lines that a run with PYTHONPROFILEIMPORTTIME=1 left in the jobs' logs and flags those. A
benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import ast
import re
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from steps.core.config import repo_root

# Packages worth naming when a step pulls them, and those worth a flag when the step's own
# source never imports them (each costs ~0.5 s or more to import on a 2-core machine).
HEAVY = ("torch", "sklearn", "scipy", "pandas", "pyarrow", "matplotlib", "transformers", "diffusers",
         "sentence_transformers", "numba", "hydra", "jsonschema", "sympy", "networkx", "PIL", "tqdm")
FLAGGED = ("torch", "torch._dynamo", "torch._inductor", "sklearn", "pandas", "matplotlib", "transformers",
           "diffusers", "sentence_transformers", "numba", "hydra", "jsonschema", "sympy")
# Sub-packages reported on their own (their time is not counted in their parent's); no step
# needs them at import time (torch.optim's first step imports torch._dynamo: steps.nn.optim).
SUBPACKAGES = ("torch._dynamo", "torch._inductor")
STEP_REF = re.compile(r"""-m\s+(steps(?:\.\w+)+)|code\(([^)]*)\)""")
QUOTED = re.compile(r"""["'](steps(?:\.\w+)+)["']""")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass
class Entry:
    """One line of `-X importtime`: a module, its own and cumulative time (µs), its depth."""

    name: str
    self_us: int
    cum_us: int
    depth: int
    children: list = field(default_factory=list)


@dataclass
class Row:
    module: str
    papers: list
    import_s: float
    process_s: float | None
    cpu_s: float | None  # user + system CPU time of the process: less sensitive to a busy machine
    packages: dict  # package → own import time (s), heaviest first
    via: dict  # heavy package → the steps.* module whose import pulled it in
    flags: list


def rule_modules(papers: list[str], root: Path) -> dict[str, list[str]]:
    """{step module: [papers whose rules run it]}: the modules named in the papers' rule files,
    the report and the index, and each paper's figures module."""
    from steps.core import config
    from steps.core.sources import module_file

    found: dict[str, list[str]] = {}
    for paper in papers:
        names = set()
        for smk in (root / "workflow" / "rules").glob(f"{paper}*.smk"):
            if smk.stem not in (paper, f"{paper}_full"):
                continue
            for m, args in STEP_REF.findall(smk.read_text()):
                names.update([m] if m else QUOTED.findall(args))
        names.update(("steps.core.report", "steps.core.index"))
        figures = config.resolve(paper, "smoke").get("report", {}).get("figures")
        if figures:
            names.add(figures)
        for name in names:
            if module_file(name, root) is not None:  # `-m` of a function's path, say, is no module
                found.setdefault(name, []).append(paper)
    return dict(sorted(found.items()))


def parse(stderr: str) -> list[Entry]:
    """The import tree of `-X importtime` output (roots in import order), less the interpreter's
    own start-up imports (everything up to and including `site`)."""
    entries = [Entry(m[4], int(m[1]), int(m[2]), len(m[3])) for m in map(LINE.match, stderr.splitlines()) if m]
    starts = [i for i, e in enumerate(entries) if e.name == "site" and e.depth == 1]
    entries = entries[starts[-1] + 1:] if starts else entries
    # Lines are printed when a module finishes, so a module's children come just before it.
    pending: list[Entry] = []
    for e in entries:
        while pending and pending[-1].depth > e.depth:
            e.children.insert(0, pending.pop())
        pending.append(e)
    return pending


def package_of(name: str) -> str:
    for sub in SUBPACKAGES:
        if name == sub or name.startswith(sub + "."):
            return sub
    return name.split(".")[0]


def attribute(roots: list[Entry]) -> tuple[dict[str, float], dict[str, str]]:
    """(own import time in s per package, the steps.* module that first pulled each package)."""
    times: dict[str, float] = {}
    via: dict[str, str] = {}

    def walk(e: Entry, owner: str | None) -> None:
        pkg = package_of(e.name)
        times[pkg] = times.get(pkg, 0.0) + e.self_us / 1e6
        if pkg != "steps" and owner is not None:
            via.setdefault(pkg, owner)
        for c in e.children:
            walk(c, e.name if pkg == "steps" else owner)

    for r in roots:
        walk(r, None)
    return dict(sorted(times.items(), key=lambda kv: -kv[1])), via


def subtree_s(roots: list[Entry], package: str) -> float:
    """Seconds spent importing `package` with everything it imported (its topmost entries)."""

    def walk(e: Entry) -> float:
        if package_of(e.name) == package:
            return e.cum_us / 1e6
        return sum(walk(c) for c in e.children)

    return sum(walk(r) for r in roots)


def own_imports(module: str, root: Path) -> set[str]:
    """The modules the module's own source imports, at module level or in a function."""
    from steps.core.sources import module_file

    tree = ast.parse(module_file(module, root).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def measure(module: str, root: Path, repeat: int = 3) -> Row:
    """Import `module` in `repeat` fresh interpreters: the fastest run's import tree, and the
    least wall and CPU time of the processes."""
    best, wall, cpu = None, float("inf"), float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                             cwd=root, capture_output=True, text=True)
        wall = min(wall, time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if res.returncode != 0:
            raise RuntimeError(f"import {module} failed:\n{res.stderr[-2000:]}")
        roots = parse(res.stderr)
        total = sum(r.cum_us for r in roots) / 1e6
        if best is None or total < best[0]:
            best = (total, roots)
    total, roots = best
    row = summarize(module, roots, mine={n.split(".")[0] for n in own_imports(module, root)})
    row.process_s, row.cpu_s = round(wall, 4), round(cpu, 4)
    return row


def summarize(name: str, roots: list[Entry], mine: set[str] | None) -> Row:
    """A row from an import tree. `mine`: the packages the step's own source imports (a heavy
    package outside it is flagged); None for a whole job's imports, where the sub-packages no
    step needs (SUBPACKAGES, sympy) are flagged."""
    times, via = attribute(roots)
    heavy = [p for p in times if p.split(".")[0] in HEAVY]
    if mine is None:  # a job's log: its own module's imports are not nested under it (runpy)
        flags = [f"{p} {subtree_s(roots, p):.2f} s" for p in heavy if p in (*SUBPACKAGES, "sympy")]
    else:
        flags = [f"{p} via {via[p]}" for p in heavy if p in FLAGGED and p in via and (p in SUBPACKAGES or p not in mine)]
    return Row(name, [], round(sum(r.cum_us for r in roots) / 1e6, 4), None, None,
               {p: round(t, 4) for p, t in times.items() if p != "steps" and (p in heavy or t >= 0.02)},
               {p: via[p] for p in heavy if p in via}, flags)


def from_logs(folder: Path) -> list[Row]:
    """One row per step log under `folder` that holds `-X importtime` lines: every import of the
    job, those its functions make while running included (run with PYTHONPROFILEIMPORTTIME=1)."""
    rows = []
    for log in sorted(folder.rglob("*.log")):
        roots = parse(log.read_text(errors="replace"))
        if roots:
            rows.append(summarize(str(log.relative_to(folder).with_suffix("")), roots, None))
    return rows


def table(rows: list[Row], top: int = 4) -> str:
    lines = ["| module | import s | process s | process CPU s | heaviest packages (own import s) | flags |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        pk = ", ".join(f"{p} {t:.2f}" for p, t in list(r.packages.items())[:top])
        lines.append(f"| {r.module} | {r.import_s:.2f} | {_f(r.process_s)} | {_f(r.cpu_s)} | {pk} | {'; '.join(r.flags)} |")
    lines.append("")
    cpu = sum(r.cpu_s or 0.0 for r in rows)
    lines.append(f"{len(rows)} rows: {sum(r.import_s for r in rows):.1f} s of imports in all"
                 + (f" ({cpu:.1f} s CPU for the processes); " if cpu else "; ")
                 + f"{sum(1 for r in rows if 'torch' in r.packages)} import torch, {sum(1 for r in rows if r.flags)} flagged.")
    return "\n".join(lines)


def _f(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("papers", nargs="*", help="papers to measure (default: every registered paper)")
    ap.add_argument("--module", nargs="+", default=[], help="measure these modules instead of the papers' steps")
    ap.add_argument("--logs", metavar="DIR", help="instead, read the imports of the jobs whose logs are under DIR "
                    "(a run with PYTHONPROFILEIMPORTTIME=1), lazy imports included")
    ap.add_argument("--repeat", type=int, default=3, help="fresh imports per module; the minimum is kept")
    ap.add_argument("--json", nargs="?", const="benchmarks/imports.json", metavar="PATH",
                    help="also write the rows as JSON (default path benchmarks/imports.json)")
    a = ap.parse_args(argv)
    root = repo_root()
    if a.logs:
        modules, rows = {}, from_logs(Path(a.logs))
    elif a.module:
        modules, rows = {m: [] for m in a.module}, []
    else:
        import yaml

        registered = yaml.safe_load((root / "workflow" / "papers.yaml").read_text())["papers"]
        unknown = [p for p in a.papers if p not in registered]
        if unknown:
            sys.exit(f"error: unknown paper(s) {', '.join(unknown)}; registered: {', '.join(registered)}")
        modules, rows = rule_modules(a.papers or registered, root), []
    for m, papers in modules.items():
        print(f"importing {m}", file=sys.stderr)
        row = measure(m, root, a.repeat)
        row.papers = papers
        rows.append(row)
    print(table(rows))
    if a.json:
        from steps.core.io import write_json

        out = root / a.json if not Path(a.json).is_absolute() else Path(a.json)
        write_json(out, {"python": sys.version.split()[0], "repeat": a.repeat, "rows": [asdict(r) for r in rows]})
        print(f"written {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
