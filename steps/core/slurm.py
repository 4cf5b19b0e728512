"""What a step does under SLURM when SIGTERM stops it (README, "Running on your cluster").

A training step stopped by SIGTERM has written `<output>.resume.pt` (steps.core.checkpoint)
and exits 143. Under SLURM the SIGTERM means one of two things, told apart by the job's state:

* the job is still RUNNING: a warning. The slurm profile submits every job with
  `--signal=TERM@<s>` (SIGTERM to the job's steps s seconds before its time limit), and a
  cluster that preempts sends SIGTERM during the grace time. The step asks SLURM to requeue
  its job (`scontrol requeue $SLURM_JOB_ID`): the job keeps its id, waits in the queue, starts
  again and resumes from the checkpoint. Snakemake, polling the job, sees it PENDING and then
  RUNNING again and keeps waiting; no retry is spent.
* the job is COMPLETING/CANCELLED/TIMEOUT: it was cancelled (`scancel`, or Snakemake stopping
  its jobs after Ctrl-C) or has hit its time limit. Nothing is requeued, so a cancelled job
  stays cancelled; Snakemake retries a failed job (`retries:` in the profile) and the retry
  resumes from the checkpoint.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping

Runner = Callable[..., subprocess.CompletedProcess]


def job_id(env: Mapping[str, str] | None = None) -> str | None:
    """The SLURM job this process runs in, or None outside SLURM."""
    env = os.environ if env is None else env
    jid = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    return jid if jid and jid.isdigit() else None


def job_state(jid: str, run: Runner = subprocess.run) -> str | None:
    """The job's state as squeue reports it (RUNNING, COMPLETING, ...), or None if unknown."""
    try:
        res = run(["squeue", "-h", "-j", jid, "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = res.stdout.split() if res.returncode == 0 else []
    return lines[0].strip() if lines else None


def requeue_after_sigterm(env: Mapping[str, str] | None = None, run: Runner = subprocess.run,
                          say: Callable[[str], None] = print) -> bool:
    """After a resume checkpoint was written on SIGTERM: requeue this SLURM job if the SIGTERM
    was a warning (the job is still RUNNING). Returns whether it was requeued."""
    jid = job_id(env)
    if jid is None:
        return False
    state = job_state(jid, run)
    if state != "RUNNING":
        say(f"SLURM job {jid} is {state or 'in an unknown state'}: not requeued (a retry resumes from the checkpoint)")
        return False
    try:
        res = run(["scontrol", "requeue", jid], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        say(f"SLURM job {jid}: scontrol requeue failed ({e}); a retry resumes from the checkpoint")
        return False
    if res.returncode != 0:
        say(f"SLURM job {jid}: scontrol requeue failed ({(res.stderr or res.stdout).strip()}); "
            "a retry resumes from the checkpoint")
        return False
    say(f"SLURM job {jid} requeued: it resumes from the checkpoint when it starts again")
    return True
