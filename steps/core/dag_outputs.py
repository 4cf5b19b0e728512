"""Every output file of each paper's Snakemake DAG, for many papers in one process.

    python -m steps.core.dag_outputs mini instaflow monolith     # prints {paper: [files]} as JSON

`snakemake --summary` per paper parses the whole workflow each time (seconds a paper, minutes
at 46 papers); here Snakemake's API parses it once and plans one DAG per paper's targets
(steps.core.dvc_sync.targets), reading the same summary. Run from the checkout's root.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path


def outputs(root: Path, papers: list[str], scale: str) -> dict[str, list[str]]:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    from steps.core.dvc_sync import parse_summary, targets

    found = {}
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1), config_settings=ConfigSettings(config={"scale": scale}),
                          snakefile=root / "Snakefile", workdir=root)
        for paper in papers:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                wf.dag(dag_settings=DAGSettings(targets=set(targets(paper)))).summary()
            found[paper] = sorted(set(parse_summary(buf.getvalue())))
    return found


if __name__ == "__main__":
    scale, *names = sys.argv[1:]
    result = outputs(Path.cwd(), names, scale)
    sys.stdout.write(json.dumps(result) + "\n")
