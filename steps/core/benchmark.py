"""Benchmark a paper's DAG from scratch: wall time and peak memory per rule, and the share of
time spent outside the steps' own work (process start-up, imports, config, scheduling).

    python -m steps.core.benchmark instaflow --scale mini --cores 2
    python -m steps.core.benchmark --summarize .             # the last run of every paper here
    python -m steps.core.benchmark instaflow --summarize .   # of one paper

It runs `snakemake -c <cores> <paper> --config scale=<scale>` in a fresh copy of the
checkout (your own data/, models/ and results/ are untouched), then reads Snakemake's per-job
benchmark files (wall time, max RSS) and each step's `done: work X s` log line. Writes a JSON
file and prints a table. A benchmark, not a test: nothing here asserts a time.
`--summarize DIR` reads the benchmark files an earlier run left in DIR instead, at the scale
that run used (`run_scale`), and writes DIR/benchmarks/<paper>_<scale>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from steps.core.config import repo_root
from steps.core.io import write_json

WORK = re.compile(r"done: work ([0-9.]+) s, start-up and imports ([0-9.]+) s")


def copy_checkout(dest: Path) -> None:
    root = repo_root()
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for f in filter(None, files):
        if (root / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, dest / f)


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by a set of [start, end] intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def run_scale(workdir: Path, paper: str) -> str | None:
    """The scale the paper's outputs in `workdir` were built at: its scale stamp
    data/<paper>/scale.txt (rule scale_stamp, which every rule of the paper reads), else the
    `scale` every metrics file results/<paper>/*.json records (when they agree); None if neither
    says."""
    stamp = workdir / "data" / paper / "scale.txt"
    if stamp.is_file() and stamp.read_text().strip():
        return stamp.read_text().strip()
    found = set()
    for f in sorted((workdir / "results" / paper).glob("*.json")):
        try:
            found.add(json.loads(f.read_text()).get("scale"))
        except (OSError, ValueError, AttributeError):
            continue
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def benchmarked_papers(workdir: Path) -> list[str]:
    """The papers with Snakemake benchmark files in workdir/benchmarks/<paper>/."""
    base = workdir / "benchmarks"
    return sorted(d.name for d in base.iterdir() if d.is_dir() and any(d.glob("*.tsv"))) if base.is_dir() else []


def summarize(workdir: Path, paper: str, dag_wall_s: float | None) -> dict:
    """Per-rule rows and totals from workdir/benchmarks/<paper>/*.tsv and logs/<paper>/*.log."""
    rows, intervals = [], []
    for tsv in sorted((workdir / "benchmarks" / paper).glob("*.tsv")):
        with open(tsv) as f:
            rec = list(csv.DictReader(f, delimiter="\t"))[-1]
        wall = float(rec["s"])
        log = workdir / "logs" / paper / f"{tsv.stem}.log"
        m = WORK.findall(log.read_text()) if log.exists() else []
        work, startup = (float(m[-1][0]), float(m[-1][1])) if m else (None, None)
        end = tsv.stat().st_mtime
        intervals.append((end - wall, end))
        rows.append({
            "job": tsv.stem, "wall_s": wall, "work_s": work, "startup_s": startup,
            "max_rss_mb": float(rec["max_rss"]) if rec.get("max_rss", "-") not in ("-", "NA") else None,
        })
    jobs_wall = sum(r["wall_s"] for r in rows)
    work = sum(r["work_s"] or 0.0 for r in rows)
    busy = union_length(intervals)
    out = {
        "paper": paper, "jobs": rows, "n_jobs": len(rows),
        "dag_wall_s": dag_wall_s, "jobs_wall_s": jobs_wall, "work_s": work,
        "in_job_overhead_s": jobs_wall - work,
        "peak_rss_mb": max((r["max_rss_mb"] or 0.0) for r in rows) if rows else None,
    }
    if dag_wall_s is not None:
        idle = max(0.0, dag_wall_s - busy)  # no job running: Snakemake start-up, DAG, scheduling
        out["no_job_running_s"] = idle
        out["outside_work_share"] = 1.0 - work / (jobs_wall + idle) if jobs_wall + idle > 0 else None
    else:
        out["outside_work_share"] = 1.0 - work / jobs_wall if jobs_wall else None
    return out


def table(s: dict) -> str:
    lines = ["| job | wall s | work s | start-up s | max RSS MB |", "|---|---|---|---|---|"]
    for r in s["jobs"]:
        lines.append(f"| {r['job']} | {r['wall_s']:.2f} | {_f(r['work_s'])} | {_f(r['startup_s'])} | {_f(r['max_rss_mb'], 0)} |")
    lines.append("")
    if s.get("dag_wall_s") is not None:
        lines.append(f"DAG wall time {s['dag_wall_s']:.1f} s; no job running {s['no_job_running_s']:.1f} s "
                     "(Snakemake start-up, DAG building, scheduling).")
    lines.append(f"{s['n_jobs']} jobs: {s['jobs_wall_s']:.1f} s in jobs, of which the steps' own work "
                 f"{s['work_s']:.1f} s; start-up, imports and config {s['in_job_overhead_s']:.1f} s.")
    if s.get("outside_work_share") is not None:
        lines.append(f"Share of time outside the steps' own work: {100 * s['outside_work_share']:.0f} %.")
    lines.append(f"Peak memory of one job: {_f(s['peak_rss_mb'], 0)} MB.")
    return "\n".join(lines)


def _f(v, nd=2):
    return "—" if v is None else f"{v:.{nd}f}"


def summarize_existing(workdir: Path, papers: list[str], scale: str | None, out: str | None) -> None:
    """--summarize: each paper's last run in `workdir`, labelled with the scale it used."""
    if not papers:
        sys.exit(f"error: no benchmark files in {workdir / 'benchmarks'}/<paper>/: run a paper there first")
    if out and len(papers) > 1:
        sys.exit("error: --out names one file: name one paper too")
    for paper in papers:
        if not list((workdir / "benchmarks" / paper).glob("*.tsv")):
            sys.exit(f"error: no benchmark files in {workdir / 'benchmarks' / paper}: run {paper} there first")
        used = run_scale(workdir, paper)
        if scale and used and scale != used:
            sys.exit(f"error: the run of {paper} in {workdir} is at {used} scale, not {scale}")
        s = summarize(workdir, paper, None)
        s.update(scale=used or scale)
        path = Path(out or workdir / "benchmarks" / f"{paper}_{s['scale'] or 'unknown'}.json")
        write_json(path, s)
        print(f"## {paper}, {s['scale'] or 'unknown'} scale\n\n{table(s)}\n")
        print(f"written {path}", file=sys.stderr)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paper", nargs="?", help="the paper (with --summarize: default every paper that has run in DIR)")
    ap.add_argument("--scale", choices=["smoke", "mini", "full"],
                    help="default mini; with --summarize, the scale the run used (read from DIR)")
    ap.add_argument("--cores", default="2")
    ap.add_argument("--out", help="JSON output (default benchmarks/<paper>_<scale>.json)")
    ap.add_argument("--summarize", metavar="DIR", help="only summarize an existing run in DIR")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    a = ap.parse_args(argv)
    if a.summarize:
        workdir = Path(a.summarize)
        summarize_existing(workdir, [a.paper] if a.paper else benchmarked_papers(workdir), a.scale, a.out)
        return
    if not a.paper:
        ap.error("name the paper to benchmark (or --summarize DIR)")
    scale = a.scale or "mini"
    out = Path(a.out or repo_root() / "benchmarks" / f"{a.paper}_{scale}.json")
    work = Path(tempfile.mkdtemp(prefix=f"paperzoo-bench-{a.paper}-"))
    copy_checkout(work)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-c", a.cores, a.paper, "--config", f"scale={scale}"]
    print(f"running {' '.join(cmd)} in {work}", file=sys.stderr)
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=work)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        sys.exit(f"error: the run failed (exit {res.returncode}); its logs are in {work}/logs")
    s = summarize(work, a.paper, wall)
    s.update(scale=scale, cores=a.cores)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    write_json(out, s)
    print(table(s))
    print(f"\nwritten {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
