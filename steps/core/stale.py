"""Outputs made stale by a run that has started: removed before the first job runs.

Snakemake reruns a job when a job upstream of it reruns, and deletes a job's outputs only when
that job starts. If the run stops before (a step killed, a step failing, Ctrl-C), the outputs
downstream of the rerun keep their old content and, to the next run, look up to date: Snakemake
does not rebuild a missing intermediate file while everything below it looks current. The same
command rerun would then do nothing and report the previous configuration's results.

`remove_stale(dag)`, called when a run starts (onstart in workflow/rules/common.smk), removes the
existing outputs of every job that is scheduled to run *because* a job it depends on runs. They
are stale whatever happens next: if the run completes, they are rebuilt as Snakemake would have
rebuilt them anyway; if it stops, the next run finds them missing, rebuilds them and, through
them, the stopped job (which resumes from its checkpoint). Jobs that rerun for their own reasons
(changed parameters, code or input) keep their outputs until they start: those reasons are still
there on the next run. Nothing is removed in a dry run or with --touch.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable


def stale_outputs(needrun: Iterable, dependencies) -> list[str]:
    """Existing outputs of jobs in `needrun` that depend on another job in `needrun`.
    `dependencies[job]` maps the jobs `job` depends on to the files it takes from them."""
    needrun = set(needrun)
    out: list[str] = []
    for job in needrun:
        if any(dep in needrun for dep in dependencies[job]):
            out += [str(f) for f in job.output if os.path.lexists(str(f))]
    return sorted(set(out))


def remove(paths: Iterable[str]) -> None:
    for p in paths:
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.remove(p)


def remove_stale(workflow, say=print) -> list[str]:
    """Remove the stale outputs of the run `workflow` is about to execute; returns them."""
    if workflow.dryrun or workflow.touch:
        return []
    dag = workflow.dag
    paths = stale_outputs(dag.needrun_jobs(), dag.dependencies)
    if paths:
        remove(paths)
        shown = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
        say(f"paperzoo: removed {len(paths)} output(s) that this run rebuilds because a job "
            f"upstream of them reruns, so that a stopped run never leaves them looking current: {shown}")
    return paths
