"""results/index.md: one row per paper that has a report — scale, headline metric, claims
holding / stated, how many were registered before the runs (and changed since), wall time —
from every results/<paper>/report.json present. Accounting and sanity checks are not claims.

    python -m steps.core.index io.results=results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from steps.core.io import write_text


def build(results_dir: Path) -> str:
    rows = []
    for p in sorted(results_dir.glob("*/report.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            rows.append(f"| {p.parent.name} | ? | unreadable report.json | | | | |")
            continue
        c = r.get("claims", {})
        tested = c.get("holds", 0) + c.get("fails", 0)
        registered = (f"{c['registered_before_runs']} / {c.get('stated', 0)} before the runs"
                      + (f", {c['changed_after_registration']} changed since" if c.get("changed_after_registration") else "")
                      if "registered_before_runs" in c else "not recorded")
        rows.append(
            f"| [{r['paper']}]({r['paper']}/report.md) | {r['scale']} | {r['headline']['label']}: "
            f"{r['headline']['value']} | {c.get('holds', 0)} / {c.get('stated', 0)} "
            f"({tested} tested, {c.get('fails', 0)} fail) | {registered} | {r['wall_time_s']:.0f} s | {r['title']} |"
        )
    head = [
        "# paperzoo results", "",
        "One row per paper that has run. Smoke-scale rows mean nothing; see each report.", "",
        "| paper | scale | headline | claims holding / stated | claims registered | wall time | title |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + rows) + "\n"


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    results_dir = Path(opts.get("io.results", "results"))
    write_text(Path(opts.get("io.out", results_dir / "index.md")), build(results_dir))


if __name__ == "__main__":
    main()
