"""GPU accounting for a paper's report: each GPU rule's estimated GPU-hours beside measured ones.

* estimated: params (resources.<phase>.gpu_hours, all jobs of the phase together), else the
  request's upper bound, gpu × runtime × jobs;
* measured: the jobs' own wall time from Snakemake's benchmark files × the GPUs each job holds;
* billed (through SLURM): sacct's elapsed time × allocated GPUs of every SLURM job the phase's
  rule ran as, retries and requeued runs included. Which SLURM job ran which rule is read from
  Snakemake's run logs (.snakemake/log/*.snakemake.log: "Job 5 has been submitted with SLURM
  jobid 12 (log: .../slurm_logs/rule_instaflow_teacher/0/12.log)"); for each rule and
  wildcards the most recent log that submitted it counts, so an older run at another scale is
  not mixed in.

The report shows the table only when the paper's GPU rules ran through SLURM.
"""

from __future__ import annotations

import csv
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from steps.core import resources as pzresources

SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$")


@dataclass
class Row:
    phase: str
    gpus: int                   # GPUs a job holds
    jobs: int                   # jobs with a benchmark file
    estimated_h: float | None
    estimate_source: str        # "params" (gpu_hours) or "limit" (gpu × runtime × jobs)
    measured_h: float | None    # benchmark wall time × gpus
    billed_h: float | None      # sacct: elapsed × allocated GPUs, all runs
    slurm_jobs: int             # SLURM jobs (retries and requeues counted once per job id)


def phase_of(name: str, phases: Iterable[str]) -> str | None:
    """The phase a benchmark path or job name belongs to: the longest phase that is the whole
    name or its prefix followed by '_' or '/' (teacher_s0 -> teacher, pairs_sd/shard0001 -> pairs)."""
    best = None
    for p in phases:
        if (name == p or name.startswith(p + "_") or name.startswith(p + "/")) and (best is None or len(p) > len(best)):
            best = p
    return best


def benchmark_seconds(bench_dir: Path | None) -> dict[str, float]:
    """{benchmark path relative to bench_dir, without .tsv: wall seconds of its last run}."""
    out = {}
    if not bench_dir or not Path(bench_dir).is_dir():
        return out
    for tsv in sorted(Path(bench_dir).rglob("*.tsv")):
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows and rows[-1].get("s") not in (None, "", "NA", "-"):
            out[tsv.relative_to(bench_dir).with_suffix("").as_posix()] = float(rows[-1]["s"])
    return out


def submitted_jobs(log_dir: Path | None, paper: str) -> dict[str, list[str]]:
    """{phase: SLURM job ids} of the paper's rules (<paper>_<phase>) from Snakemake's run logs;
    per rule and wildcards, the ids from the newest log that submitted it."""
    latest: dict[str, tuple[str, list[str]]] = {}  # slurm log dir -> (log name, job ids)
    logs = sorted(Path(log_dir).glob("*.snakemake.log")) if log_dir and Path(log_dir).is_dir() else []
    for log in logs:  # names are timestamps: oldest first
        for line in log.read_text(errors="replace").splitlines():
            m = SUBMITTED.search(line.strip())
            if not m:
                continue
            jid, slurm_log = m.groups()
            key = str(Path(slurm_log).parent)
            if key not in latest or latest[key][0] != log.name:
                latest[key] = (log.name, [])
            latest[key][1].append(jid)
    prefix = f"rule_{paper}_"
    out: dict[str, list[str]] = {}
    for key, (_, ids) in latest.items():
        parts = Path(key).parts
        rule_dir = next((p for p in parts if p.startswith("rule_")), None)
        if rule_dir and rule_dir.startswith(prefix):
            out.setdefault(rule_dir[len(prefix):], []).extend(ids)
    return out


def parse_sacct(text: str) -> dict[str, list[tuple[int, int | None]]]:
    """sacct -n -P -X -D -o JobIDRaw,ElapsedRaw,AllocTRES output -> {job id: [(elapsed s,
    allocated GPUs or None if not tracked), one per run]}."""
    out: dict[str, list[tuple[int, int | None]]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        jid, elapsed, tres = parts[0], parts[1], parts[2]
        m = re.search(r"gres/gpu(?::[^=,]+)?=(\d+)", tres)
        out.setdefault(jid, []).append((int(elapsed or 0), int(m.group(1)) if m else None))
    return out


def sacct_runs(job_ids: list[str], run: Callable[..., subprocess.CompletedProcess] = subprocess.run):
    """sacct's runs of these jobs, or None when sacct is missing or fails (no accounting)."""
    if not job_ids:
        return {}
    cmd = ["sacct", "-n", "-P", "-X", "-D", "-j", ",".join(job_ids), "-o", "JobIDRaw,ElapsedRaw,AllocTRES"]
    try:
        res = run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_sacct(res.stdout) if res.returncode == 0 else None


def rows(table: Mapping, bench: Mapping[str, float], slurm: Mapping[str, list[str]],
         sacct: Mapping[str, list[tuple[int, int | None]]] | None) -> list[Row]:
    """One row per GPU phase of the params resources table."""
    gpu_phases = [p for p in table if p != "default" and pzresources.gpus(table, p) > 0]
    out = []
    for phase in sorted(gpu_phases):
        n = pzresources.gpus(table, phase)
        secs = [s for name, s in bench.items() if phase_of(name, table) == phase]
        sec = dict(table.get(phase) or {})
        if sec.get("gpu_hours") is not None:
            est, source = float(sec["gpu_hours"]), "params"
        elif secs and sec.get("runtime"):
            est, source = n * float(sec["runtime"]) / 60 * len(secs), "limit"
        else:
            est, source = None, "limit"
        ids = slurm.get(phase, [])
        billed = None
        if ids and sacct is not None:
            billed = sum(e * (g if g is not None else n) for jid in ids for e, g in sacct.get(jid, [])) / 3600
        out.append(Row(phase, n, len(secs), est, source, sum(secs) * n / 3600 if secs else None, billed, len(set(ids))))
    return out


def gather(table: Mapping, paper: str, bench_dir: Path | None, log_dir: Path | None,
           run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[Row]:
    """The rows for a paper after a run: benchmarks, Snakemake's logs and sacct."""
    slurm = submitted_jobs(log_dir, paper)
    ids = sorted({j for v in slurm.values() for j in v}, key=int)
    return rows(table, benchmark_seconds(bench_dir), slurm, sacct_runs(ids, run))


def _h(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def section(found: list[Row]) -> list[str]:
    """Markdown lines of the report's GPU accounting section; none unless a GPU rule ran
    through SLURM."""
    if not any(r.slurm_jobs for r in found):
        return []
    lines = ["", "## GPU accounting", "",
             "Estimated: params `resources.<rule>.gpu_hours`, else ≤ the request (GPUs × runtime limit × jobs). "
             "Measured: the jobs' wall time (benchmarks) × GPUs. Billed: SLURM's elapsed time × allocated GPUs "
             "(sacct), every run of every job, retries and requeues included.", "",
             "| rule | GPUs a job | jobs | estimated GPU-h | measured GPU-h | billed GPU-h (SLURM jobs) |",
             "|---|---|---|---|---|---|"]
    for r in found:
        est = _h(r.estimated_h) if r.estimate_source == "params" or r.estimated_h is None else f"≤ {_h(r.estimated_h)}"
        lines.append(f"| {r.phase} | {r.gpus} | {r.jobs} | {est} | {_h(r.measured_h)} | {_h(r.billed_h)} ({r.slurm_jobs}) |")
    return lines
