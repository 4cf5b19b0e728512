"""InstaFlow through a real SLURM: a one-node cluster with fake GPUs started for these tests
(scripts/local-slurm/start.sh: munge, MariaDB + slurmdbd, slurmctld, slurmd), the smoke DAG
submitted with the CI variant of the slurm profile (it differs only in polling), and the faults
a cluster brings: scancel, the time limit, SIGTERM before preemption.

Marker `slurm`; skipped with the reason where no cluster can be started (not root, no apt-get,
a SLURM configuration this repository did not write). The daemons this session started are
stopped afterwards, by their pid files, whatever the tests did.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SNAKEMAKE, copy_repo, patient

pytestmark = pytest.mark.slurm

SCRIPTS = ROOT / "scripts" / "local-slurm"
PROFILE = "workflow/profiles/slurm-ci"
SMOKE = ["--config", "scale=smoke"]
GPU_RULES = {"instaflow_teacher", "instaflow_reflow", "instaflow_distill", "instaflow_evaluate"}
MARKER = "# managed-by: start-local-slurm.sh"


def _skip_reason() -> str | None:
    if os.name != "posix" or not Path("/proc").is_dir():
        return "needs Linux"
    if os.geteuid() != 0:
        return "starting a local SLURM cluster needs root (munge, slurmctld, slurmd)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and MARKER not in conf.read_text(errors="replace"):
        return "/etc/slurm/slurm.conf exists and was not written by scripts/local-slurm: not touching a real cluster"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A local SLURM cluster with 2 fake GPUs; yields seconds it took to start."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    started = tmp_path_factory.mktemp("slurm") / "started"
    env = {**os.environ, "LOCAL_SLURM_GPUS": "2", "LOCAL_SLURM_STARTED_FILE": str(started)}
    if not shutil.which("slurmctld"):
        inst = subprocess.run(["bash", str(SCRIPTS / "start.sh")], env={**env, "LOCAL_SLURM_INSTALL_ONLY": "1"},
                              capture_output=True, text=True, timeout=patient(900))
        if inst.returncode != 0:
            pytest.skip(f"could not install the SLURM packages: {inst.stderr.strip().splitlines()[-1:]}")
    t0 = time.monotonic()
    try:
        res = subprocess.run(["bash", str(SCRIPTS / "start.sh")], env=env, capture_output=True, text=True, timeout=patient(600))
        if res.returncode != 0:
            pytest.fail(f"local SLURM cluster did not start:\n{res.stderr[-4000:]}")
        yield time.monotonic() - t0
    finally:  # stop exactly what this session started, even when a test failed
        names = started.read_text().split() if started.exists() else []
        if names:
            subprocess.run(["bash", str(SCRIPTS / "stop.sh"), *names], capture_output=True, timeout=patient(300))


RUNNING: list[subprocess.Popen] = []


def run_slurm(work: Path, *args: str, timeout: int = 600) -> subprocess.Popen:
    """snakemake through the CI profile in the background (SIGINT on timeout: SIGTERM does not
    stop a hung run), its output in work/run.log."""
    cmd = ["timeout", "-s", "INT", "-k", "30", str(round(patient(timeout))), SNAKEMAKE, "--profile", PROFILE, *args]
    with open(work / "run.log", "w") as log:  # the child keeps its own descriptor
        p = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "PAPERZOO_ROOT": str(work)})
    RUNNING.append(p)
    return p


@pytest.fixture(autouse=True)
def _stop_runs_left_behind():
    """A test that fails while its snakemake still runs: interrupt it (it cancels its jobs)."""
    yield
    while RUNNING:
        p = RUNNING.pop()
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # `timeout` passes it on to snakemake
            try:
                p.wait(90)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def finish(p: subprocess.Popen, work: Path) -> str:
    p.wait()
    out = (work / "run.log").read_text()
    assert p.returncode == 0, f"snakemake through SLURM failed ({p.returncode}):\n{out[-5000:]}"
    return out


def submitted(out: str) -> dict[str, list[str]]:
    """{rule: SLURM job ids} from Snakemake's output."""
    got: dict[str, list[str]] = {}
    for jid, rule in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", out):
        got.setdefault(rule, []).append(jid)
    return got


def sacct(ids) -> list[tuple[str, str]]:
    """(job id, state) of every run of these jobs, requeued runs included."""
    res = subprocess.run(["sacct", "-n", "-P", "-X", "-D", "-j", ",".join(ids), "-o", "JobIDRaw,State"],
                         capture_output=True, text=True, check=True)
    return [tuple(line.split("|")[:2]) for line in res.stdout.splitlines() if line.strip()]


def wait_until(cond, timeout, what):
    timeout = round(patient(timeout))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def slurm_smoke(slurm_cluster, tmp_path_factory):
    """The InstaFlow smoke DAG run once through SLURM (every job submitted with sbatch)."""
    work = copy_repo(tmp_path_factory.mktemp("slurm_smoke"))
    t0 = time.monotonic()
    out = finish(run_slurm(work, "--verbose", "instaflow", "results/index.md", *SMOKE, "papers=instaflow", timeout=900), work)
    return work, out, time.monotonic() - t0


def test_smoke_dag_through_slurm_submits_every_job(slurm_smoke):
    work, out, seconds = slurm_smoke
    jobs = submitted(out)
    # every rule that runs a command went through sbatch; only the `instaflow` target (no command)
    # and the scale stamp (a local rule: one echo) run on the login node
    stats = re.search(r"Job stats:\n(.*?)\ntotal", out, re.S).group(1)
    planned = {line.split()[0] for line in stats.splitlines()[2:] if line.strip()}
    assert set(jobs) == planned - {"instaflow", "scale_stamp"}, (jobs, planned)
    assert len(jobs["instaflow_distill"]) == 2
    states = sacct([j for ids in jobs.values() for j in ids])
    assert states and all(state == "COMPLETED" for _, state in states), states
    print(f"\nsmoke DAG through SLURM: {seconds:.0f} s, {sum(map(len, jobs.values()))} jobs")


def test_gpu_rules_sbatch_lines_carry_their_gpu_request(slurm_smoke):
    _, out, _ = slurm_smoke
    calls = re.findall(r"sbatch call: (sbatch .*?) --wrap=", out)
    assert calls
    for call in calls:
        rule = re.search(r"--comment rule_(\w+?)(?:_wildcards_\S+)?(?:\s|$)", call).group(1)
        if rule in GPU_RULES:
            cpus = 2 if rule == "instaflow_evaluate" else 1
            for flag in ("--gpus=1", f"--cpus-per-gpu={cpus}", "-p gpu", "--mem 2000", "-t 10", "--signal=TERM@300"):
                assert flag in call, (rule, flag, call)
        else:
            assert "--gpus" not in call and "-p cpu" in call and "--cpus-per-task=1" in call, (rule, call)


def test_slurm_outputs_equal_a_local_run(slurm_smoke, smoke_run):
    work, _, _ = slurm_smoke
    for name in ("fid", "straightness", "prompt_acc", "fid_features"):
        a = json.loads((smoke_run / "results" / "instaflow" / f"{name}.json").read_text())
        b = json.loads((work / "results" / "instaflow" / f"{name}.json").read_text())
        assert a["values"] == b["values"] and a["config_hash"] == b["config_hash"], name


def test_report_lists_estimated_beside_measured_gpu_hours(slurm_smoke):
    work, _, _ = slurm_smoke
    report = (work / "results" / "instaflow" / "report.md").read_text()
    assert "## GPU accounting" in report, report[-2000:]
    for phase, jobs in (("teacher", 1), ("reflow", 1), ("distill", 2), ("evaluate", 1)):
        row = re.search(rf"^\| {phase} \| 1 \| {jobs} \| ≤ (\S+) \| (\S+) \| (\S+) \({jobs}\) \|$", report, re.M)
        assert row, (phase, report[-2000:])
        limit, measured, billed = (float(x) for x in row.groups())
        assert limit == pytest.approx(jobs * 10 / 60, rel=0.01) and 0 < measured < limit and measured <= billed < limit


# ---------------------------------------------------------------------------------- faults

@pytest.fixture(scope="module")
def data_ready(slurm_cluster, tmp_path_factory):
    """A copy of the repo whose smoke data (digits, captions) is built, to copy per fault test."""
    work = copy_repo(tmp_path_factory.mktemp("faults_base"))
    res = subprocess.run([SNAKEMAKE, "-c2", "data/instaflow/digits.npz", "data/instaflow/caption_emb.npz", *SMOKE],
                         cwd=work, capture_output=True, text=True, timeout=patient(300))
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def fault_copy(data_ready: Path, tmp_path: Path) -> Path:
    work = tmp_path / "w"
    shutil.copytree(data_ready, work, symlinks=True)
    return work


TEACHER = "models/instaflow/rf1_s0.pt"


def long_teacher(steps: int) -> list[str]:
    """--config for a teacher long enough to be interrupted; a periodic checkpoint every 500 steps."""
    return ["--config", "scale=smoke", f"instaflow=teacher.steps={steps} ckpt.every_steps=500 progress.every_s=1"]


def teacher_progress(work: Path) -> int:
    log = work / "logs" / "instaflow" / "teacher_s0.log"
    steps = re.findall(r"teacher: (\d+)/", log.read_text()) if log.exists() else []
    return int(steps[-1]) if steps else 0


def running_teacher_job() -> str | None:
    res = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %k"], capture_output=True, text=True)
    return next((line.split()[0] for line in res.stdout.splitlines() if "rule_instaflow_teacher" in line), None)


def resumed_from(work: Path) -> int:
    m = re.search(r"resuming \S+rf1_s0\.pt from step (\d+)", (work / "logs" / "instaflow" / "teacher_s0.log").read_text())
    assert m, (work / "logs" / "instaflow" / "teacher_s0.log").read_text()[-2000:]
    return int(m.group(1))


def test_scancel_is_retried_and_resumes_from_the_checkpoint(data_ready, tmp_path):
    work = fault_copy(data_ready, tmp_path)
    p = run_slurm(work, TEACHER, *long_teacher(10000))
    jid = wait_until(lambda: running_teacher_job() if teacher_progress(work) >= 1500 else None, 300, "teacher progress")
    subprocess.run(["scancel", jid], check=True)
    out = finish(p, work)
    ids = submitted(out)["instaflow_teacher"]
    assert len(ids) == 2 and ids[0] == jid, ids  # cancelled, then retried as a new SLURM job
    states = dict(sacct(ids))
    assert states[ids[0]].startswith("CANCELLED") and states[ids[1]] == "COMPLETED", states
    assert resumed_from(work) >= 1500
    assert (work / "models" / "instaflow" / "rf1_s0.pt").exists()


def test_time_limit_is_retried_and_resumes_from_the_checkpoint(data_ready, tmp_path):
    """A 1-minute limit (and no early warning signal) on a teacher that needs longer: SLURM
    stops it with SIGTERM at the limit, the step checkpoints, the retry (given 10 minutes)
    resumes and finishes (or, on a machine too loaded for 10 minutes, checkpoints again and the
    next retry resumes from there)."""
    work = fault_copy(data_ready, tmp_path)
    # 150,000 steps: well over the first attempt's minute even on a fast idle machine (50,000
    # took 60 s here), well under the retry's 10 minutes on a loaded one
    p = run_slurm(work, TEACHER, "--set-resources", "instaflow_teacher:runtime=1 if attempt == 1 else 10",
                  "instaflow_teacher:slurm_extra=''", *long_teacher(150000), timeout=1200)
    out = finish(p, work)
    ids = submitted(out)["instaflow_teacher"]
    states = sacct(ids)
    # the first attempt meets its minute; a retry on a heavily loaded machine may meet its ten
    # minutes too and be retried again: each attempt after a limit resumes, the last completes
    assert len(ids) >= 2 and [s for _, s in states] == ["TIMEOUT"] * (len(ids) - 1) + ["COMPLETED"], states
    assert resumed_from(work) > 0
    print(f"\ntime limit: {len(ids)} attempts, runs {states}, last resumed from step {resumed_from(work)}")


def test_sigterm_before_preemption_checkpoints_and_requeues(data_ready, tmp_path):
    """SIGTERM to the job's steps while the job keeps running, as --signal=TERM@300 before the
    time limit or a preemption grace time sends it: the step writes its checkpoint and requeues
    its own job; the same SLURM job starts again, resumes, and Snakemake spends no retry."""
    work = fault_copy(data_ready, tmp_path)
    p = run_slurm(work, TEACHER, *long_teacher(10000))
    jid = wait_until(lambda: running_teacher_job() if teacher_progress(work) >= 1500 else None, 300, "teacher progress")
    subprocess.run(["scancel", "--signal=TERM", jid], check=True)
    out = finish(p, work)
    assert submitted(out)["instaflow_teacher"] == [jid]  # no resubmission: SLURM requeued it
    runs = sacct([jid])
    assert runs[0] == (jid, "REQUEUED") and runs[-1] == (jid, "COMPLETED"), runs
    assert resumed_from(work) >= 1500
    assert "Error in rule instaflow_teacher" not in out


# ------------------------------------------------------------------ several tasks, one job

def test_two_task_training_job_runs_end_to_end(data_ready, tmp_path):
    """The teacher as one SLURM job of 2 tasks: params ask for 2 GPUs and the srun launcher
    (how a multi-node run starts, here on the test cluster's one node with its 2 fake GPUs), so
    sbatch gets --ntasks-per-node=2 and 2 GPUs per node, and the rule's own srun starts two
    processes that train data-parallel (gloo: the fake GPUs are not CUDA devices). Rank 0 writes
    the checkpoint and the main log; rank 1 logs to its own file."""
    from steps.core import checkpoint

    work = fault_copy(data_ready, tmp_path)
    smoke = work / "params" / "instaflow" / "smoke.yaml"
    line = "  teacher: {gpu: 1, cpus_per_gpu: 1, threads: 1,"
    assert line in smoke.read_text()
    smoke.write_text(smoke.read_text().replace(line, "  teacher: {gpu: 2, launcher: srun, cpus_per_gpu: 1, threads: 2,"))
    t0 = time.monotonic()
    out = finish(run_slurm(work, "--verbose", TEACHER, *SMOKE), work)
    (jid,) = submitted(out)["instaflow_teacher"]
    call = next(c for c in re.findall(r"sbatch call: (sbatch .*?) --wrap=", out) if "rule_instaflow_teacher" in c)
    for flag in ("--nodes=1", "--ntasks-per-node=2", "--cpus-per-gpu=1", "--gres=gpu:2", "-p gpu"):
        assert flag in call, (flag, call)
    assert "srun --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --kill-on-bad-exit=1 python -m steps.instaflow.teacher" in out
    assert sacct([jid]) == [(jid, "COMPLETED")]
    log = (work / "logs" / "instaflow" / "teacher_s0.log").read_text()
    assert "rank 0/2 (gloo, 1 node(s) × 2, srun)" in log and "rank 1/2" not in log
    assert "rank 1/2" in (work / "logs" / "ranks" / f"slurm-{jid}-teacher.rank1.log").read_text()
    record = checkpoint.load(work / TEACHER)["state"]["meta"]["train"]
    assert (record["world_size"], record["launcher"], record["effective_batch"]) == (2, "srun", 256)
    print(f"\n2-task job through SLURM: {time.monotonic() - t0:.0f} s; {call}")
