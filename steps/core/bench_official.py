"""Our implementation beside the paper's official code (or a named library), timed in one
process, interleaved, on the same inputs: the ratio official / ours (≥ 1: ours at least as fast).

    python -m steps.core.bench_official                              # every paper below
    python -m steps.core.bench_official hesso fast_sparse_convnets --repeat 15
    python -m steps.core.bench_official hesso --official hesso=/opt/oto3   # a folder holding the package
    python -m steps.core.bench_official teddy --official teddy=/path/to/TEDDY

Each paper's `steps/<paper>/bench_official.py` gives `cases(official_path) -> list[Case]`: the
same computation twice — ours and the official one — each as an `Arm` (an untimed `setup()`
that builds fresh state, then the timed `run(state)`), and a `check` that compares their
results (same output within a tolerance), so the timing compares like with like. The official
side comes from an installed package or from `--official paper=PATH` (PATH is put in front of
sys.path); where it is absent the case is skipped with the reason, and the command still exits 0.
Official packages are optional (`pip install -e ".[bench-official]"`), never required.

Timing: `--warmup` untimed runs of each arm (JIT, caches), then `--repeat` rounds; each round
runs both arms once, alternating which goes first, so load from other processes on a shared
machine falls on both alike. Reported: min and median of each arm, the ratio of the medians and
of the minima, the load average before and after, the CPU and the thread count (one thread by
default: torch, BLAS and numba are pinned with `--threads`). A benchmark, not a test: nothing
here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The papers with a bench_official module, in report order (explicit: an import error is loud).
PAPERS = ("teddy", "hesso", "otov2", "fast_sparse_convnets", "monolith")


@dataclass
class Arm:
    """One implementation: `setup()` builds fresh state (untimed); `run(state)` is timed and
    returns what `Case.check` compares."""

    setup: Callable[[], Any]
    run: Callable[[Any], Any]


@dataclass
class Case:
    """One row of the table: ours against `official_name` on the configuration `config`.
    `official` None means skipped, `skip` says why. `check(ours, official)` returns
    (ok, detail)."""

    paper: str
    name: str
    config: str
    official_name: str
    ours: Arm
    official: Arm | None = None
    skip: str | None = None
    check: Callable[[Any, Any], tuple[bool, str]] | None = None
    notes: list[str] = field(default_factory=list)


def load_official(module: str, path: str | None, min_version: str | None = None, below: str | None = None,
                  track_package: bool = False):
    """(module, None) when `module` imports (from `path`, put first on sys.path, if given), else
    (None, reason). The distribution's version must be ≥ `min_version` and < `below` (when
    given). run_papers forgets the modules loaded from `path` once the paper's cases ran — and,
    with track_package, those under the package's own folder wherever it is installed (a package
    that puts its folder on sys.path leaves top-level modules behind) — so that two papers can use
    two versions of one package."""
    if path:
        if not Path(path).expanduser().is_dir():
            return None, f"--official path {path} is not a folder"
        add_path(path)
        for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
            del sys.modules[name]  # another version, imported for an earlier paper
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 -- any failure to import means: absent here
        return None, f"{module} does not import ({e.__class__.__name__}: {e})"
    if track_package and getattr(mod, "__file__", None):
        _ADDED_PATHS.append(str(Path(mod.__file__).resolve().parent))
    have = distribution_version(module, mod)
    if have is not None and ((min_version and _vtuple(have) < _vtuple(min_version)) or (below and _vtuple(have) >= _vtuple(below))):
        want = " and ".join(filter(None, [min_version and f">= {min_version}", below and f"< {below}"]))
        return None, f"{module} {have} is what imports; this case needs {want}"
    return mod, None


_ADDED_PATHS: list[str] = []


def add_path(path: str | Path) -> None:
    """Put a folder first on sys.path until forget_official()."""
    p = str(Path(path).expanduser().resolve())
    if p not in sys.path:
        sys.path.insert(0, p)
        _ADDED_PATHS.append(p)


def forget_official() -> None:
    """Drop the sys.path entries load_official added (and those the official code added under
    them: some packages append their own folder) and the modules imported from them."""
    under = tuple(p + os.sep for p in _ADDED_PATHS)
    if under:
        for name, m in list(sys.modules.items()):
            if (getattr(m, "__file__", None) or "").startswith(under):
                del sys.modules[name]
        sys.path[:] = [e for e in sys.path if e not in _ADDED_PATHS and not (e + os.sep).startswith(under)]
    _ADDED_PATHS.clear()


# ------------------------------------------------------------------------------------------------
# Shims for official code written for older torch (ours, applied outside the official package).

def install_torch_aliases() -> None:
    """Module aliases for the TorchScript ONNX internals that torch ≥ 2.9 moved (no-op where
    they are still in place)."""
    import torch.onnx

    try:
        import torch.onnx._globals  # noqa: F401
        return
    except ImportError:
        pass
    try:
        from torch.onnx._internal.torchscript_exporter import _globals, symbolic_helper, utils
    except ImportError:
        return
    sys.modules["torch.onnx._globals"] = _globals
    if not hasattr(torch.onnx, "symbolic_helper"):
        torch.onnx.symbolic_helper = symbolic_helper
        sys.modules["torch.onnx.symbolic_helper"] = symbolic_helper
    if not hasattr(torch.onnx, "_optimize_graph"):
        torch.onnx._optimize_graph = utils._optimize_graph


@contextlib.contextmanager
def cuda_calls_stay_put():
    """`Tensor.cuda()` returns the tensor itself while inside, where CUDA is unavailable."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def seeded_batches(steps: int, batch: int, shape: tuple[int, ...], classes: int, seed: int = 0) -> list:
    """`steps` (x, y) minibatches of standard-normal inputs and uniform labels, seeded."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, *shape, generator=g), torch.randint(0, classes, (batch,), generator=g)) for _ in range(steps)]


def grads_once(model, batch) -> None:
    """Cross-entropy gradients of one (x, y) minibatch, left in p.grad (the optimizer-only cases
    step on these same gradients every time)."""
    import torch

    x, y = batch
    torch.nn.functional.cross_entropy(model(x), y).backward()


def distribution_version(module: str, mod=None) -> str | None:
    """The version of the distribution that provides `module` (None when unknown)."""
    from importlib import metadata

    base = Path(getattr(mod, "__file__", "") or "").parent.parent
    for d in base.glob(f"{module}-*.dist-info") if base.is_dir() else []:
        return d.name[len(module) + 1:].removesuffix(".dist-info")
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return getattr(mod, "__version__", None)


def _vtuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def time_case(case: Case, repeat: int, warmup: int) -> dict:
    """Interleaved timing of both arms of a case (see the module docstring); the check runs on
    the warm-up results (or on one extra untimed run when warmup is 0)."""
    arms = {"ours": case.ours, "official": case.official}
    first: dict[str, Any] = {}
    for _ in range(max(1, warmup)):
        for k, arm in arms.items():
            first[k] = arm.run(arm.setup())
    ok, detail = case.check(first["ours"], first["official"]) if case.check else (True, "not checked")
    times: dict[str, list[float]] = {k: [] for k in arms}
    for i in range(repeat):
        order = ("ours", "official") if i % 2 == 0 else ("official", "ours")
        for k in order:
            state = arms[k].setup()
            t0 = time.perf_counter()
            arms[k].run(state)
            times[k].append(time.perf_counter() - t0)
    res = {"check_ok": bool(ok), "check": detail}
    for k, ts in times.items():
        res[k] = {"min_s": min(ts), "median_s": statistics.median(ts), "runs": len(ts)}
    res["ratio_median"] = res["official"]["median_s"] / res["ours"]["median_s"]
    res["ratio_min"] = res["official"]["min_s"] / res["ours"]["min_s"]
    return res


@contextlib.contextmanager
def pinned_threads(n: int):
    """torch, BLAS/OpenMP (threadpoolctl) and numba at n threads while inside, for both arms
    alike; the previous settings afterwards."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def fmt_s(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def table(rows: list[dict]) -> str:
    """Markdown: one line per case; skipped cases say why."""
    head = ("| paper | case | configuration | official | ours min / median | official min / median "
            "| ratio (median) | ratio (min) | same result |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if r.get("skip"):
            lines.append(f"| {r['paper']} | {r['name']} | {r['config']} | {r['official_name']} | — | — | — | — | skipped: {r['skip']} |")
            continue
        o, f = r["ours"], r["official"]
        lines.append(
            f"| {r['paper']} | {r['name']} | {r['config']} | {r['official_name']} | {fmt_s(o['min_s'])} / {fmt_s(o['median_s'])} "
            f"| {fmt_s(f['min_s'])} / {fmt_s(f['median_s'])} | {r['ratio_median']:.2f} | {r['ratio_min']:.2f} "
            f"| {'yes' if r['check_ok'] else 'NO'}: {r['check']} |")
    return "\n".join(lines)


def run_papers(papers: list[str], official: dict[str, str], repeat: int, warmup: int, threads: int,
               log=print) -> dict:
    """Every case of every paper; returns the JSON-able record (machine, load, rows)."""
    load_before = os.getloadavg()
    with pinned_threads(threads):
        rows = [row for paper in papers for row in _paper_rows(paper, official.get(paper), repeat, warmup, log)]
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "threads": threads,
            "repeat": repeat, "warmup": warmup, "loadavg_before": list(load_before),
            "loadavg_after": list(os.getloadavg()), "rows": rows}


def _paper_rows(paper: str, official_path: str | None, repeat: int, warmup: int, log) -> list[dict]:
    """The rows of one paper's cases; its official modules are forgotten afterwards."""
    rows = []
    try:
        for case in importlib.import_module(f"steps.{paper}.bench_official").cases(official_path):
            row = {"paper": case.paper, "name": case.name, "config": case.config,
                   "official_name": case.official_name, "notes": list(case.notes)}
            if case.official is None:
                row["skip"] = case.skip or "official implementation absent"
                log(f"{paper}/{case.name}: skipped ({row['skip']})")
            else:
                row.update(time_case(case, repeat, warmup))
                log(f"{paper}/{case.name}: ours {fmt_s(row['ours']['median_s'])}, official "
                    f"{fmt_s(row['official']['median_s'])}, ratio {row['ratio_median']:.2f}")
            rows.append(row)
    finally:
        forget_official()
    return rows


def parse_official(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        paper, sep, path = it.partition("=")
        if not sep or paper not in PAPERS:
            raise SystemExit(f"--official takes PAPER=PATH with PAPER one of {', '.join(PAPERS)}; got {it!r}")
        out[paper] = path
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("papers", nargs="*", help=f"papers to run (default: all of {', '.join(PAPERS)})")
    ap.add_argument("--repeat", type=int, default=11, help="timed rounds per case (default 11)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs of each arm first (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="threads for torch, BLAS and numba (default 1)")
    ap.add_argument("--official", action="append", default=[], metavar="PAPER=PATH",
                    help="where the official code of PAPER is (a folder put first on sys.path)")
    ap.add_argument("--out", default="benchmarks/official.json", help="JSON record (default benchmarks/official.json)")
    a = ap.parse_args(argv)
    unknown = [p for p in a.papers if p not in PAPERS]
    if unknown:
        raise SystemExit(f"unknown paper(s) {', '.join(unknown)}; known: {', '.join(PAPERS)}")
    rec = run_papers(a.papers or list(PAPERS), parse_official(a.official), a.repeat, a.warmup, a.threads)
    print()
    print(table(rec["rows"]))
    m = rec["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, {rec['threads']} thread(s); load average before "
          f"{rec['loadavg_before'][0]:.2f}, after {rec['loadavg_after'][0]:.2f}; {rec['repeat']} rounds, "
          f"{rec['warmup']} warm-up; ratio = official / ours (≥ 1: ours at least as fast)")
    if a.out:
        from steps.core.io import write_json

        write_json(a.out, rec)
        print(f"wrote {a.out}")
    return rec


if __name__ == "__main__":
    # Through the imported module, so that the paper modules and this CLI share one state
    # (`python -m` runs this file as __main__, a second copy of the module).
    from steps.core import bench_official

    bench_official.main()
