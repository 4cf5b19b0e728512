"""Phase `report` (any paper): results/<paper>/report.md and report.json.

It reads the paper's metrics files (`report.metrics`), evaluates every claim in
params/<paper>/claims.yaml, and writes the paper's numbers beside ours, each claim's verdict,
and the figures the paper's `report.figures` module draws.

The run it states (the "Run:" line and the Compute table) comes from the metrics it reports:
their seeds, the overrides and config hashes, and the jobs that produced them (their `jobs`
records, steps.core.provenance), so outputs of earlier runs with other seeds or parameters
that still lie in benchmarks/ are not counted. Metrics files without job records (written
before they existed) fall back to Snakemake's benchmark files.

    python -m steps.core.report paper=instaflow scale=mini io.results=results/instaflow

A paper's study (a pre-registered regime study, say) gets a report of its own from the same
code: `io.claims=` names its claims file (default params/<paper>/claims.yaml) and overrides of
`report.metrics` and `report.figures` name its metrics and figures. The paper's claims file
lists its studies (`studies:`), and the paper's report links each study's report.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from steps.core import accounting, provenance
from steps.core import claims as claimslib
from steps.core import metrics as metricslib
from steps.core.cli import need_io, run
from steps.core.config import repo_root
from steps.core.errors import PaperzooError
from steps.core.io import write_json, write_text

SCALE_NOTE = {
    "smoke": "> **Smoke scale: these numbers mean nothing.** Smoke runs check that the pipeline runs "
    "end to end, with tiny models and budgets; no verdict below says anything about the paper.",
    "mini": "> **Mini scale**: the paper's mechanism, faithfully implemented, in miniature on a 2-core "
    "CPU. Absolute numbers are not comparable with the paper's; the claims compare our variants "
    "with each other.",
    "full": "> **Full scale**: the paper's own setting.",
}


KIND_SECTIONS = (
    ("claim", "Claims", ""),
    ("sanity", "Sanity checks", "Checks of our machinery, not of the paper."),
    ("accounting", "Accounting",
     "Arithmetic of the setup (ratios fixed by bit widths, counts equal by construction): shown "
     "for the reader, never counted as a finding."),
)


def refuse_accounting_claims(verdicts, records: dict) -> None:
    """A `claim` with a comparison whose two sides name only values the steps declared
    arithmetic of the setup (metrics.write(accounting=...)), or constants, cannot fail for a
    reason the paper could be wrong about, even beside a measured conjunct: it belongs under
    kind `accounting` (shown, never counted), or the check must compare a measured value."""

    def arithmetic(p: str) -> bool:
        m = p.split(".", 1)[0]
        return m in records and metricslib.is_accounting(m, records[m], p)

    for v in verdicts:
        if v.kind != "claim":
            continue
        bad = claimslib.arithmetic_comparisons(v.check, arithmetic)
        if bad:
            text, named = bad[0]
            raise PaperzooError(f"claim {v.id} checks only arithmetic of the setup in `{text}` ({', '.join(named)}: "
                                "declared accounting by the step that wrote them); make it kind: accounting, "
                                "or check a measured value")


def _side(m: dict) -> str:
    """`balmer` ← `balmer_registered`: `balmer.x` = 1.3, ... (the metrics one side was judged on)."""
    swap = ", ".join(f"`{a}` for `{n}`" for n, a in m["from"].items())
    vals = ", ".join(f"`{p}` = {fmt(x)}" for p, x in m["values"].items())
    return f"{swap + ': ' if swap else ''}{vals}"


def history_section(verdicts, scale: str) -> list[str]:
    """Every change of a claim after it was registered, with its reason and the verdicts before
    and after (DESIGN: the report shows both): measured on this run where the entry names the
    metrics of the model before the change (claims.measured_history), and as recorded."""
    rows = [(v, h, m) for v in verdicts for h, m in zip(v.history, v.measured or (None,) * len(v.history), strict=True)]
    if not rows:
        return []
    lines = ["", "## Changes to claims after registration", "",
             "| claim | date | what changed | reason | verdict before → after |", "|---|---|---|---|---|"]
    for v, h, m in rows:
        what = f"check was `{h['was']}`" if h.get("was") else h.get("change", "")
        recorded = f"{h.get('verdict_before', '?')} → {h.get('verdict_after', '?')}" \
            if h.get("verdict_before") or h.get("verdict_after") else "—"
        if m:
            verdicts = (f"**{m['before']['verdict']}** → **{m['after']['verdict']}** (measured at {scale})"
                        f"<br>before: {_side(m['before'])}<br>after: {_side(m['after'])}<br>recorded: {recorded}")
        else:
            verdicts = recorded
        lines.append(f"| {v.id} | {h['date']} | {what} | {h['reason']} | {verdicts} |")
    return lines


def as_registered(v) -> str:
    """`<br>as registered: fails` when the claim's first change names the metrics of the model
    it was registered with (measured on this run), else ''."""
    first = v.measured[0] if v.measured else None
    return f"<br>model as registered: {first['before']['verdict']}" if first else ""


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def ours(path: str | dict | None, metrics: dict, scale: str = "") -> str:
    """`mean ± std` when the path names a summary node, else the value. `path` may map scales
    to paths (`{mini: prompt_acc..., full: clip...}`)."""
    if isinstance(path, dict):
        path = path.get(scale) or path.get("mini" if scale == "smoke" else "")
    if not path:
        return "—"
    node = metrics
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return "not run"
        node = node[part]
    if isinstance(node, dict) and "mean" in node:
        return f"{fmt(node['mean'])} ± {fmt(node.get('std', 0.0))}"
    return fmt(node)


def run_wall_time(records: dict) -> float:
    """Sum of the steps' wall times; a step that wrote several metrics files counts once."""
    steps = {(r["config_hash"], r["wall_time_s"]) for r in records.values()}
    return sum(wall for _, wall in steps)


def run_line(records: dict, jobs: list[dict], n_jobs: int, wall: float) -> str:
    """`Run: seeds [...], overrides ..., config ..., device ..., git ..., N jobs, T s of job wall time.`"""
    r0 = next(iter(records.values()))
    seeds = provenance.run_seeds(jobs) or r0["seeds"]
    revs = sorted({r["git_revision"] for r in records.values()})
    hashes = sorted({r["config_hash"] for r in records.values()})
    if any("jobs" in r for r in records.values()):
        ov = provenance.run_overrides(jobs)
        said = "overrides " + ", ".join(f"`{o}`" for o in ov) if ov else "no overrides"
    else:
        said = "overrides not recorded"
    return (f"Run: seeds {seeds}, {said}, config {', '.join(hashes)}, device {r0['device']}, git {', '.join(revs)}, "
            f"{n_jobs} jobs, {wall:.0f} s of job wall time.")


def job_label(job: dict, paper: str) -> str:
    """`teacher → rf1_s0.pt` (another paper's job: `instaflow.teacher → ...`)."""
    name = job["phase"] if job.get("paper") == paper else f"{job.get('paper')}.{job['phase']}"
    outs = [Path(o).name for o in job.get("outputs") or [] if not o.endswith(".resume.pt")]
    if not outs:
        return f"{name} (stopped)" if job.get("outputs") else name
    return f"{name} → {outs[0]}" + (f" (+{len(outs) - 1})" if len(outs) > 1 else "")


def job_times(bench_dir: Path | None) -> list[tuple[str, float, float | None]]:
    """(job, wall s, max RSS MB) from Snakemake's benchmark files of the paper's last run."""
    import csv

    out = []
    for tsv in sorted(bench_dir.glob("*.tsv")) if bench_dir and bench_dir.is_dir() else []:
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows:
            rss = rows[-1].get("max_rss", "-")
            out.append((tsv.stem, float(rows[-1]["s"]), float(rss) if rss not in ("-", "NA", "") else None))
    return out


def _batch(b: dict) -> str:
    """'256 = 2 processes × 1 × 128' (effective batch = processes × accumulation × micro-batch)."""
    n = int(b.get("effective_batch") or 0)
    micro, acc = b.get("micro_batch"), b.get("accumulation_steps")
    world = n // (int(micro) * int(acc)) if micro and acc else "?"
    return f"{n} = {world} × {acc} × {micro}"


def training_section(records: dict) -> list[str]:
    """How each training job ran (the metrics' extra.training, from its checkpoint): processes,
    device, precision and the effective batch actually used."""
    runs = {}
    for r in records.values():
        runs.update((r.get("extra") or {}).get("training") or {})
    runs = {job: t for job, t in runs.items() if t}
    if not runs:
        return []
    lines = ["", "## Training runs", "",
             "Processes = nodes × processes per node (one per GPU; steps.core.distributed). Effective batch = "
             "processes × gradient-accumulation steps × micro-batch, the global batch params ask for.", "",
             "| job | processes | launcher | device | precision | effective batch | steps | resumed |",
             "|---|---|---|---|---|---|---|---|"]
    for job, t in sorted(runs.items()):
        batch = "<br>".join(f"{st.get('name', '')}: {_batch(st)}" for st in t["stages"]) if t.get("stages") else _batch(t)
        procs = f"{t.get('world_size', 1)} ({t.get('nodes', 1)} × {t.get('processes_per_node', 1)})"
        if t.get("world_sizes"):
            procs += f", runs on {'/'.join(map(str, t['world_sizes']))}"
        lines.append(f"| {job} | {procs} | {t.get('launcher', '—')} | {t.get('device', '—')} | {t.get('precision', '—')} "
                     f"| {batch} | {t.get('steps', '—')} | {t.get('resumed', 0)} |")
    return lines


def claims_path(cfg: DictConfig) -> Path:
    """The claims file the report evaluates: io.claims (relative to the repository), else the paper's."""
    given = (cfg.get("io") or {}).get("claims")
    return repo_root() / given if given else repo_root() / "params" / cfg.paper / "claims.yaml"


def studies_section(claims: dict, results_dir: Path) -> list[str]:
    """Links to the reports of the paper's studies, with the command that makes each."""
    if not claims.get("studies"):
        return []
    lines = ["", "## Studies", ""]
    for s in claims["studies"]:
        link = os.path.relpath((repo_root() / s["report"]).resolve(), results_dir.resolve())
        lines.append(f"- [{s['title']}]({link}): `{s['command']}` (not part of this report's run)")
    return lines


def build(cfg: DictConfig, results_dir: Path) -> tuple[str, dict]:
    paper = cfg.paper
    claims = claimslib.load(claims_path(cfg))
    records = {}
    for name in cfg.report.metrics:
        p = results_dir / f"{name}.json"
        if p.exists():
            records[name] = metricslib.read(p)
    values = {k: r["values"] for k, r in records.items()}
    scales = {r["scale"] for r in records.values()}
    if scales - {cfg.scale}:
        raise PaperzooError(f"{results_dir} holds {sorted(scales)} results but the report is for {cfg.scale}: rerun the paper at one scale")
    verdicts = claimslib.verdicts(claims, values, cfg.scale)
    refuse_accounting_claims(verdicts, records)
    figures = []
    if cfg.report.get("figures"):
        mod = importlib.import_module(cfg.report.figures)
        figures = mod.make(cfg, results_dir, values)

    info = claims["paper"]
    lines = [f"# {info['title']}", "",
             f"{info['authors']} — {info['venue']} — [arXiv {info['arxiv']}](https://arxiv.org/abs/{info['arxiv']})"
             + (f" — code: {info['code']}" if info.get("code") else ""), "",
             f"paperzoo reproduction at **{cfg.scale}** scale.", "", SCALE_NOTE[cfg.scale], ""]
    for s in claims.get("substitutes", []):
        if isinstance(s, str) or cfg.scale in s["scales"]:
            lines.append(f"- Substitute: {s if isinstance(s, str) else s['text']}")
    made = provenance.merge_jobs(j for r in records.values() for j in r.get("jobs") or [])
    if made:
        jobs = [(job_label(j, paper), float(j["wall_s"]), j.get("max_rss_mb")) for j in made]
    else:  # metrics written before job records: the benchmark files (of every run so far)
        jobs = job_times(Path(cfg.io.benchmarks) if "benchmarks" in cfg.io else None)
    wall = sum(w for _, w, _ in jobs) if jobs else run_wall_time(records)
    if records:
        lines += ["", run_line(records, made, len(jobs), wall), ""]

    tally = {}
    main_claims = [v for v in verdicts if v.kind == "claim"]
    for v in main_claims:
        key = v.verdict if not v.verdict.startswith("not testable") else "not testable here"
        tally[key] = tally.get(key, 0) + 1
    lines += ["## Verdicts at a glance", "",
              f"{len(main_claims)} claims: " + ", ".join(f"{n} {k}" for k, n in sorted(tally.items())) + ".", ""]

    lines += ["## The paper's numbers beside ours", "",
              f"| quantity | paper | source | verified | ours ({cfg.scale}) | note |", "|---|---|---|---|---|---|"]
    for n in claims["numbers"]:
        lines.append(f"| {n['quantity']} | {fmt(n['value'])} | {n['source']} | {'yes' if n['verified'] else 'no'} "
                     f"| {ours(n.get('ours'), values, cfg.scale)} | {n.get('note', '')} |")
    for kind, title, intro in KIND_SECTIONS:
        rows = [v for v in verdicts if v.kind == kind]
        if not rows:
            continue
        lines += ["", f"## {title}", ""] + ([intro, ""] if intro else [])
        lines += ["| claim | check | measured | verdict | registered |", "|---|---|---|---|---|"]
        for v in rows:
            measured = "<br>".join(f"`{p}` = {fmt(x)}" for p, x in v.values.items())
            note = f"<br>*{v.note}*" if v.note and v.verdict.startswith("not testable") else ""
            lines.append(f"| {v.statement} ({v.source}) | `{v.check}` | {measured} | **{v.verdict}**{as_registered(v)}{note} "
                         f"| {v.registration} |")
    lines += history_section(verdicts, cfg.scale)
    lines += studies_section(claims, results_dir)
    if figures:
        lines += ["", "## Figures", ""]
        for caption, rel in figures:
            lines += [f"**{caption}**", "", f"![{caption}]({rel})", ""]
    lines += training_section(records)
    if jobs:
        lines += ["", "## Compute", "", "| job | wall s | max RSS MB |", "|---|---|---|"]
        lines += [f"| {j} | {w:.1f} | {fmt(m)} |" for j, w, m in jobs]
    # GPU-hours per GPU rule, estimated (params) beside measured and billed; only after a run
    # through SLURM. Snakemake's run logs (where it records each rule's SLURM job ids) are in
    # the working directory the rule runs in.
    lines += accounting.section(accounting.gather(
        OmegaConf.to_container(cfg.resources, resolve=True), paper,
        Path(cfg.io.benchmarks) if "benchmarks" in cfg.io else None, Path(cfg.io.get("snakemake_logs", ".snakemake/log"))))
    lines += ["", "## Metrics files", ""]
    for name, r in records.items():
        lines.append(f"- `{name}.json` — {r['description']} (config {r['config_hash']}, {r['wall_time_s']:.1f} s)")
    missing = [m for m in cfg.report.metrics if m not in records]
    if missing:
        lines.append(f"- not run yet: {', '.join(missing)}")
    lines += ["", "How to read this report: README.md, section \"Reading a report\".", ""]

    head = claims["headline"]
    summary = {
        "paper": paper, "scale": cfg.scale, "title": info["title"],
        "headline": {"label": head["label"], "value": ours(head["value"], values)},
        "claims": {"stated": len(main_claims), **{k.replace(" ", "_"): n for k, n in tally.items()},
                   "registered_before_runs": sum(1 for v in main_claims if (v.registered or {}).get("when") == "before-mini"),
                   "changed_after_registration": sum(1 for v in main_claims if v.history)},
        "wall_time_s": round(wall, 1),
        "verdicts": [{"id": v.id, "kind": v.kind, "verdict": v.verdict} for v in verdicts],
    }
    return "\n".join(lines), summary


def dvc_metric(cfg: DictConfig, results_dir: Path, summary: dict) -> dict:
    """results/<paper>/summary.json, the paper's one DVC metric (dvc.yaml, steps.core.dvc_sync):
    small, so that `dvc metrics show` prints one short row per paper and `dvc metrics diff` one
    line per change. It holds the scale, the headline as a number (`headline`, with
    `headline_std` where it is a mean over seeds) and the claims' verdict counts. Labels, titles
    and each verdict stay in report.json; the wall time is left out, as it differs on every run."""
    head = claimslib.load(claims_path(cfg))["headline"]["value"]
    if isinstance(head, dict):  # a path per scale, as `ours` reads it
        head = head.get(cfg.scale) or head.get("mini" if cfg.scale == "smoke" else "")
    node = None
    if head:
        name, *keys = head.split(".")
        node = metricslib.read(results_dir / f"{name}.json")["values"] if (results_dir / f"{name}.json").exists() else None
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
    out: dict = {"scale": cfg.scale}
    if isinstance(node, dict) and isinstance(node.get("mean"), int | float):
        out["headline"], out["headline_std"] = node["mean"], node.get("std")
    else:
        out["headline"] = node if isinstance(node, int | float) else None
    counts = summary["claims"]
    out["claims"] = {"stated": counts["stated"], "holds": counts.get("holds", 0), "fails": counts.get("fails", 0),
                     "not_run": counts.get("not_run", 0), "not_testable": counts.get("not_testable_here", 0)}
    return out


def main(cfg: DictConfig) -> dict:
    (results,) = need_io(cfg, "results")
    results_dir = Path(results)
    text, summary = build(cfg, results_dir)
    write_text(results_dir / "report.md", text)
    write_json(results_dir / "report.json", summary)
    write_json(results_dir / "summary.json", dvc_metric(cfg, results_dir, summary))
    return summary


if __name__ == "__main__":
    run(main, None, "report")
