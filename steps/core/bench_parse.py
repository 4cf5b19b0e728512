"""How Snakemake's parse and plan time grows with the registry: the figures of README's
"Performance" section, measured in a fresh copy of the checkout with the registry filled up to
`--papers` with scaffolded placeholder papers (steps.core.new_paper).

    python -m steps.core.bench_parse                  # 46 papers: dry runs and a no-op check
    python -m steps.core.bench_parse --smoke          # also the whole smoke of every paper, then
                                                      # the no-op rerun of everything
    python -m steps.core.bench_parse --papers 15      # the registry as it is

Figures (each the median of --repeat runs, wall seconds):
  dry run, one paper's target    `snakemake -n results/instaflow/fid.json`
  dry run, everything            `snakemake -n` (mini: every job planned)
  dry run, cold config cache     the same after deleting .cache/ (every paper composed by Hydra)
  whole smoke (--smoke)          `snakemake -c2 --config scale=smoke`, once
  no-op rerun (--smoke)          `snakemake -c2 --config scale=smoke` again: nothing to do
A benchmark, not a test: nothing here asserts a time. Writes benchmarks/bench_parse.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from steps.core.benchmark import copy_checkout
from steps.core.config import repo_root
from steps.core.io import write_json


def fill_registry(work: Path, total: int) -> list[str]:
    """Scaffold placeholder papers into `work` until its registry has `total` papers."""
    from steps.core import dvc_sync, new_paper

    have = set(dvc_sync.papers(work))
    added, i = [], 0
    while len(have) + len(added) < total:
        i += 1
        slug = f"placeholder_{i:02d}"
        if slug not in have:  # a checkout may hold placeholders already
            new_paper.create(work, slug, "placeholder", f"Placeholder paper {i}", dvc=False)
            added.append(slug)
    return added


def timed(work: Path, args: list[str], repeat: int) -> tuple[float, list[float]]:
    """Median and all wall times of `snakemake <args>` in `work`."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    env = {**os.environ, "PAPERZOO_ROOT": str(work)}
    times = []
    for _ in range(repeat):
        t0 = time.monotonic()
        res = subprocess.run([snakemake, *args], cwd=work, env=env, capture_output=True, text=True)
        times.append(time.monotonic() - t0)
        if res.returncode != 0:
            raise SystemExit(f"snakemake {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return statistics.median(times), times


def run(total: int, repeat: int, smoke: bool, keep: Path | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="paperzoo-bench-parse-")) if keep is None else keep
    try:
        copy_checkout(work)
        added = fill_registry(work, total)
        from steps.core import dvc_sync

        papers = dvc_sync.papers(work)
        rows = {"papers": len(papers), "placeholders": len(added), "cores": os.cpu_count(),
                "load_before": os.getloadavg()[0]}
        timed(work, ["-n", "-q"], 1)  # warm the config and import caches (a first parse composes everything)
        rows["dry_run_one_paper_s"], rows["dry_run_one_paper_runs"] = timed(
            work, ["results/instaflow/fid.json", "-n", "-q"], repeat)
        rows["dry_run_everything_s"], rows["dry_run_everything_runs"] = timed(work, ["-n", "-q"], repeat)
        shutil.rmtree(work / ".cache", ignore_errors=True)
        rows["dry_run_everything_cold_cache_s"], _ = timed(work, ["-n", "-q"], 1)
        if smoke:
            rows["whole_smoke_s"], _ = timed(work, ["-c2", "-q", "--config", "scale=smoke"], 1)
            rows["noop_rerun_everything_s"], rows["noop_rerun_runs"] = timed(
                work, ["-c2", "-q", "--config", "scale=smoke"], repeat)
        rows["load_after"] = os.getloadavg()[0]
        return rows
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def table(rows: dict) -> str:
    lines = [f"Parse and plan time, {rows['papers']} papers registered ({rows['placeholders']} placeholders), "
             f"{rows['cores']} cores, load {rows['load_before']:.1f} → {rows['load_after']:.1f}:", "",
             "| command | wall s (median) | goal |", "|---|---|---|"]
    for key, label, goal in (("dry_run_one_paper_s", "`snakemake -n results/instaflow/fid.json`", "≤ 2"),
                             ("dry_run_everything_s", "`snakemake -n` (everything, mini)", "≤ 5"),
                             ("dry_run_everything_cold_cache_s", "`snakemake -n`, config cache cold", "—"),
                             ("whole_smoke_s", "`snakemake -c2 --config scale=smoke` (whole smoke)", "≤ 600"),
                             ("noop_rerun_everything_s", "the same again (no-op rerun of everything)", "≤ 5")):
        if key in rows:
            lines.append(f"| {label} | {rows[key]:.2f} | {goal} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m steps.core.bench_parse", description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=46, help="registry size to measure at (placeholders fill it up)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="also run the whole smoke, then the no-op rerun")
    ap.add_argument("--keep", type=Path, help="work in this (empty) folder and keep it")
    args = ap.parse_args(argv)
    rows = run(args.papers, args.repeat, args.smoke, args.keep)
    write_json(repo_root() / "benchmarks" / "bench_parse.json", rows)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
