"""Data-parallel training (steps.core.distributed), one code path from 1 CPU process to N GPUs.

* the launcher's environment, batch splitting, precision and the launch geometry, as units;
* InstaFlow's four training steps at smoke scale as 2 CPU processes (gloo, launched with the
  prefix their rules use) against the smoke run's 1-process checkpoints: the loss at every step
  and the final weights agree within float32 reduction-order noise (tolerance below);
* a rank killed mid-run fails the job at once with a clear line, and its 2-process checkpoint
  resumes in 1 process to the 1-process result;
* every full-scale training rule launches exactly the processes its SLURM request holds
  (one node: torchrun; two nodes: srun), through the slurm executor plugin's own sbatch code.
The 2-task job through a real SLURM is in tests/test_slurm.py (marker slurm).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from steps.core import checkpoint, distributed, resources
from steps.core.errors import ConfigError
from tests.conftest import ROOT, patient, snakemake

# Two processes compute the gradient of the same global batch as one, summed in another order
# (each rank's half, then DDP's all-reduce): in float32 that changes the last bits (≈ 1e-7
# relative) and Adam carries the difference on. Measured on this 2-core CPU over the smoke runs
# (100 steps; 50 for distill), largest relative difference at any step: loss 2e-7 (teacher),
# 2.5e-7 (fid_features), 1e-6 (reflow), 3.7e-6 (distill, whose loss is the smallest); final
# weights ≤ 3.4e-7. The tolerances leave ≥ 25× room for other CPUs' kernels and thread counts,
# and are still far below any real change (another batch or seed moves the smoke loss by > 1e-2).
LOSS_RTOL = 1e-4
WEIGHT_RTOL = 1e-4


# ------------------------------------------------------------------------------------ units

def test_launcher_env_from_torchrun_srun_or_nothing():
    env = distributed.launcher_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                                    "MASTER_ADDR": "h", "MASTER_PORT": "29500"})
    assert (env.launcher, env.rank, env.world, env.local_rank, env.local_world, env.nodes) == ("torchrun", 3, 8, 1, 4, 2)
    srun = {"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
            "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_TASKS_PER_NODE": "4(x2)", "SLURM_STEP_NODELIST": "gpu[07-08]",
            "SLURM_JOB_ID": "4242"}
    env = distributed.launcher_env(srun)
    assert (env.launcher, env.rank, env.world, env.local_rank, env.local_world, env.nodes) == ("srun", 5, 8, 1, 4, 2)
    assert (env.master_addr, env.master_port) == ("gpu07", 20000 + 4242 % 10000)
    one_node = {**srun, "SLURM_STEP_NUM_NODES": "1", "SLURM_STEP_TASKS_PER_NODE": "8", "SLURM_NODEID": "0"}
    assert distributed.launcher_env(one_node).master_addr == "127.0.0.1"
    # the batch script of a --ntasks=2 job (no srun step) and the executor's `srun -n1` are one process
    assert distributed.launcher_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "2"}).world == 1
    assert distributed.launcher_env({**srun, "SLURM_STEP_NUM_TASKS": "1"}).world == 1
    assert distributed.launcher_env({}) == distributed.LaunchEnv()


def test_slurm_node_lists():
    assert distributed.first_host("gpu[07-09,12],cpu1") == "gpu07"
    assert distributed.first_host("node1,node2") == "node1"
    assert distributed.first_host("n[001-004]-ib") == "n001-ib"
    assert distributed._tasks_on_node("2(x3),1", 3) == 1 and distributed._tasks_on_node("8", 0) == 8


def test_batch_plan_splits_the_global_batch_exactly():
    plan = distributed.batch_plan(1024, 32, 8)
    assert (plan.micro, plan.accumulation, plan.per_rank) == (32, 4, 128)
    rows = [i for r in range(8) for sl in plan.micro_slices(r) for i in range(1024)[sl]]
    assert rows == list(range(1024))  # every row once, rank by rank, contiguous
    assert plan.rank_slice(1) == slice(128, 256)
    assert plan.record() == {"global_batch": 1024, "micro_batch": 32, "accumulation_steps": 4, "effective_batch": 1024}
    assert distributed.batch_plan(256, None, 1).accumulation == 1
    with pytest.raises(ConfigError, match="not divisible by the 3 processes"):
        distributed.batch_plan(256, None, 3)
    with pytest.raises(ConfigError, match="not a multiple of micro_batch 48"):
        distributed.batch_plan(256, 48, 2)


def test_precision():
    cpu = torch.device("cpu")
    assert distributed.precision("auto", cpu) == "fp32" and distributed.precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="precision must be one of"):
        distributed.precision("fp16", cpu)


@pytest.mark.parametrize("section, launcher, procs, nodes", [
    ({}, "none", 1, 1),                                   # a CPU rule: one process
    ({"gpu": 1}, "none", 1, 1),                           # one GPU: plain python, no torchrun start-up
    ({"gpu": 8, "cpus_per_gpu": 8}, "torchrun", 8, 1),
    ({"gpu": 8, "nodes": 4, "cpus_per_gpu": 8}, "srun", 8, 4),
    ({"gpu": 2, "launcher": "srun"}, "srun", 2, 1),
    ({"gpu": 1, "nodes": 2}, "srun", 1, 2),
])
def test_launch_command_starts_one_process_per_gpu(section, launcher, procs, nodes):
    cmd = distributed.launch_command(section)
    got = distributed.parse_launch(cmd)
    assert (got["launcher"], got["procs_per_node"], got["nodes"]) == (launcher, procs, nodes)
    if launcher == "srun":
        assert got["cpus_per_task"] == section.get("cpus_per_gpu", 1) and "--kill-on-bad-exit=1" in cmd
    assert distributed.geometry(section)["world"] == procs * nodes


def test_launched_rule_resources_match_the_launch():
    site = {"gpu_types": {"a100": "a100_80g"}}
    one = resources.rule_resources({"t": {"gpu": 8, "gpu_model": "a100", "cpus_per_gpu": 8}}, "t", site, launched=True)
    assert {k: one[k] for k in ("gpu", "gpu_model", "cpus_per_gpu", "nodes")} == {"gpu": 8, "gpu_model": "a100_80g", "cpus_per_gpu": 8, "nodes": 1}
    many = resources.rule_resources({"t": {"gpu": 8, "nodes": 4, "gpu_model": "a100", "cpus_per_gpu": 8}}, "t", site, launched=True)
    assert "gpu" not in many and {k: many[k] for k in ("gres", "nodes", "tasks_per_node", "mpi")} == {
        "gres": "gpu:a100_80g:8", "nodes": 4, "tasks_per_node": 8, "mpi": "srun"}
    with pytest.raises(ConfigError, match="starts a single process"):
        resources.rule_resources({"t": {"gpu": 1, "nodes": 2}}, "t")
    with pytest.raises(ConfigError, match="use launcher srun"):
        resources.rule_resources({"t": {"gpu": 8, "nodes": 2, "launcher": "torchrun"}}, "t", launched=True)
    assert resources.gpus({"t": {"gpu": 8, "nodes": 4}}, "t") == 32


def test_training_summary_and_rank_logs(tmp_path):
    record = {"world_size": 1, "precision": "fp32", "global_batch": 8, "loss_trace": {"every": 1, "values": [1.0]},
              "segments": [{"from_step": 0, "world_size": 2}, {"from_step": 10, "world_size": 1}]}
    s = checkpoint.training_summary(record)
    assert s == {"world_size": 1, "precision": "fp32", "global_batch": 8, "resumed": 1, "world_sizes": [1, 2]}
    main = tmp_path / "teacher_s0.log"
    main.write_text("")
    assert distributed.rank_log_path(2, "teacher", str(main)) == tmp_path / "teacher_s0.rank2.log"


# ------------------------------------------------------------- two processes against one

def launch_prefix(gpus: int) -> list[str]:
    """The command prefix a training rule with `gpus` GPUs runs its step with (the same helper
    common.smk calls), for this interpreter."""
    table = {"t": {"gpu": gpus, "cpus_per_gpu": 1}}
    cmd = resources.rule_resources(table, "t", launched=True, shutdown_s=20)["launch"]
    words = shlex.split(cmd)
    return [sys.executable if w == "python" else w for w in words]


def step_cmd(gpus: int, phase: str, smoke: Path, out: Path, *extra: str) -> list[str]:
    d, m = smoke / "data" / "instaflow", smoke / "models" / "instaflow"
    io = {"teacher": [f"io.digits={d / 'digits.npz'}", f"io.captions={d / 'caption_emb.npz'}"],
          "fid_features": [f"io.digits={d / 'digits.npz'}", f"io.metrics={out.with_suffix('.json')}"],
          "reflow": [f"io.teacher={m / 'rf1_s0.pt'}", f"io.digits={d / 'digits.npz'}", f"io.captions={d / 'caption_emb.npz'}"],
          "distill": [f"io.teacher={m / 'rf2_s0.pt'}", f"io.digits={d / 'digits.npz'}", f"io.captions={d / 'caption_emb.npz'}"]}
    seed = [] if phase == "fid_features" else ["seed=0"]
    return [*launch_prefix(gpus), "-m", f"steps.instaflow.{phase}", "scale=smoke", *seed, f"threads={gpus}",
            *io[phase], f"io.out={out}", *extra]


REFERENCE = {"teacher": "rf1_s0.pt", "fid_features": "fid_clf.pt", "reflow": "rf2_s0.pt", "distill": "distill_rf2_s0.pt"}


def env_for(tmp: Path) -> dict:
    return {**os.environ, "PAPERZOO_RANK_LOGS": str(tmp), "PAPERZOO_ROOT": str(ROOT)}


@pytest.fixture(scope="module")
def two_process_runs(smoke_run, tmp_path_factory) -> dict:
    """Each InstaFlow training step of the smoke run, again as 2 processes (all four at once)."""
    tmp = tmp_path_factory.mktemp("two_procs")
    procs = {}
    for phase in REFERENCE:
        out = tmp / f"{phase}.pt"
        log = open(tmp / f"{phase}.log", "w")  # noqa: SIM115 (closed below)
        procs[phase] = (subprocess.Popen(step_cmd(2, phase, smoke_run, out), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env=env_for(tmp)), out, log)
    for phase, (p, _, log) in procs.items():
        assert p.wait(patient(300)) == 0, (phase, (tmp / f"{phase}.log").read_text()[-3000:])
        log.close()
    return {phase: out for phase, (_, out, _) in procs.items()} | {"tmp": tmp}


def _weights(payload: dict) -> dict[str, torch.Tensor]:
    state = payload["state"]
    if "model" in state:
        return state["model"]
    return {f"{b}.{k}": v for b, snap in state["snapshots"].items() for k, v in snap.items()}  # distill: the EMA snapshots


@pytest.mark.parametrize("phase", list(REFERENCE))
def test_two_processes_train_what_one_process_trains(two_process_runs, smoke_run, phase):
    one = checkpoint.load(smoke_run / "models" / "instaflow" / REFERENCE[phase])
    two = checkpoint.load(two_process_runs[phase])
    r1, r2 = one["state"]["meta"]["train"], two["state"]["meta"]["train"]
    assert (r1["world_size"], r2["world_size"], r2["launcher"], r2["backend"]) == (1, 2, "torchrun", "gloo")
    assert r1["effective_batch"] == r2["effective_batch"] == r2["global_batch"] and r2["micro_batch"] * 2 == r1["micro_batch"]
    l1, l2 = torch.tensor(r1["loss_trace"]["values"]), torch.tensor(r2["loss_trace"]["values"])
    assert len(l1) == len(l2) == r1["steps"]
    loss_rel = ((l1 - l2).abs() / l1.abs()).max().item()
    w1, w2 = _weights(one), _weights(two)
    weight_rel = max(((w1[k] - w2[k]).abs().max() / w1[k].abs().max().clamp_min(1e-12)).item() for k in w1)
    print(f"\n{phase}: {len(l1)} steps, max relative loss difference {loss_rel:.1e}, weights {weight_rel:.1e}")
    assert loss_rel <= LOSS_RTOL and weight_rel <= WEIGHT_RTOL
    assert "rank 1/2" in (two_process_runs["tmp"] / f"{phase}.rank1.log").read_text()  # rank 1 logs apart
    assert "rank 1/2" not in (two_process_runs["tmp"] / f"{phase}.log").read_text()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _rank_pid(launcher_pid: int, rank: int) -> int | None:
    for pid in _children(launcher_pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return None


def test_a_dead_rank_fails_the_job_fast_and_its_checkpoint_resumes_on_one_process(smoke_run, tmp_path):
    """SIGKILL rank 1 of a 2-process teacher right after its first checkpoint: rank 0's next
    all-reduce fails at once, it says so in one line, torchrun tears the group down and names
    the dead rank. The checkpoint 2 processes wrote resumes in 1 process (the rule's own
    launch for one GPU) and ends where the uninterrupted 1-process run ends."""
    out, resume = tmp_path / "rf1.pt", tmp_path / "rf1.pt.resume.pt"
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 (closed below)
    p = subprocess.Popen(step_cmd(2, "teacher", smoke_run, out, "ckpt.every_steps=10"), cwd=ROOT, stdout=log,
                         stderr=subprocess.STDOUT, env=env_for(tmp_path))
    end = time.monotonic() + 120
    while not resume.exists() and p.poll() is None and time.monotonic() < end:
        time.sleep(0.002)
    victim = _rank_pid(p.pid, 1)
    assert victim and p.poll() is None, "the run ended before rank 1 could be killed"
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    rc = p.wait(patient(120))
    failed_after = time.monotonic() - t0
    log.close()
    text = (tmp_path / "run.log").read_text()
    assert rc != 0 and failed_after < 30, (rc, failed_after, text[-3000:])
    assert re.search(r"^error: rank 0/2: .* failed .*another process of this job died", text, re.M), text[-3000:]
    assert re.search(r"rank\s*: 1 .*\n.*exitcode\s*: -9", text), text[-3000:]  # torchrun names the dead rank
    at = checkpoint.load(resume)["step"]
    assert at % 10 == 0 and 0 < at < 100 and not out.exists()

    one = subprocess.run(step_cmd(1, "teacher", smoke_run, out), cwd=ROOT, capture_output=True, text=True,
                         env=env_for(tmp_path), timeout=patient(120))
    assert one.returncode == 0, one.stderr[-3000:]
    assert f"from step {at} " in one.stderr and "written by 2 process(es), resumed on 1" in one.stderr
    ref = checkpoint.load(smoke_run / "models" / "instaflow" / "rf1_s0.pt")
    got = checkpoint.load(out)
    w1, w2 = ref["state"]["model"], got["state"]["model"]
    assert max(((w1[k] - w2[k]).abs().max() / w1[k].abs().max()).item() for k in w1) <= WEIGHT_RTOL
    summary = checkpoint.training_summary(got["state"]["meta"]["train"])
    assert summary["world_size"] == 1 and summary["resumed"] == 1 and summary["world_sizes"] == [1, 2]
    print(f"\nrank 1 killed after step {at}: the job failed {failed_after:.1f} s later; resumed on 1 process")


@pytest.mark.slow
def test_a_hung_rank_times_out_instead_of_hanging(smoke_run, tmp_path):
    """SIGSTOP rank 1: rank 0 waits in its all-reduce for dist.timeout_s, then fails the job."""
    out, resume = tmp_path / "rf1.pt", tmp_path / "rf1.pt.resume.pt"
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 (closed below)
    p = subprocess.Popen(step_cmd(2, "teacher", smoke_run, out, "ckpt.every_steps=10", "dist.timeout_s=3"), cwd=ROOT,
                         stdout=log, stderr=subprocess.STDOUT, env=env_for(tmp_path))
    while not resume.exists() and p.poll() is None:
        time.sleep(0.002)
    victim = _rank_pid(p.pid, 1)
    os.kill(victim, signal.SIGSTOP)
    try:
        rc = p.wait(patient(120))
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    log.close()
    text = (tmp_path / "run.log").read_text()
    assert rc != 0 and re.search(r"^error: rank 0/2: .*dist.timeout_s=3 s", text, re.M), text[-3000:]


# ----------------------------------------------- the launch and the SLURM request agree

def _fake_job(res: dict):
    from types import SimpleNamespace

    class Resources(dict):
        def __getattr__(self, key):
            try:
                return self[key]
            except KeyError:
                raise AttributeError(key) from None

    return SimpleNamespace(resources=Resources(res), threads=1)


def sbatch_line(res: dict) -> str:
    """The sbatch command the slurm executor plugin builds for a job with these resources."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = _fake_job(res)
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "account": "", "partition": "", "workdir": "w"}
    settings = SimpleNamespace(requeue=True, no_requeue=False, qos=None, reservation=None)
    return get_submit_command(job, params, settings) + set_gres_string(job)


def sbatch_geometry(line: str) -> dict:
    """{nodes, gpus_per_node, tasks_per_node, cpus_per_gpu} an sbatch line asks for."""
    def num(pattern, default=None):
        m = re.search(pattern, line)
        return int(m.group(1)) if m else default
    nodes = num(r"--nodes=(\d+)", 1)
    per_node = num(r"--gres=gpu(?::[\w.]+)?:(\d+)")
    if per_node is None:
        total = num(r"--gpus=(?:[\w.]+:)?(\d+)", 0)
        per_node = total // nodes
    tasks = num(r"--ntasks-per-node=(\d+)") or (num(r"--ntasks=(\d+)", 0) // nodes) or None
    return {"nodes": nodes, "gpus_per_node": per_node, "tasks_per_node": tasks, "cpus_per_gpu": num(r"--cpus-per-gpu=(\d+)")}


def planned(text: str) -> dict[str, tuple[dict, str]]:
    """{rule: (resources, shell command)} of a dry run with --printshellcmds (last job of each rule)."""
    out, rule, res = {}, None, {}
    for line in text.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            rule, res = m.group(1), {}
        m = re.match(r"^\s+resources: (.*)$", line)
        if m:
            res = {}
            for kv in m.group(1).split(", "):
                k, v = kv.split("=", 1)
                res[k] = int(v) if v.isdigit() else v
        if line.startswith("Shell command: ") and rule:
            out[rule] = (res, line.removeprefix("Shell command: "))
    return out


@pytest.mark.parametrize("scale, overrides", [
    ("full", ""),                                                           # 8 GPUs, one node: torchrun
    ("full", "resources.reflow.nodes=2 resources.distill.nodes=4"),         # 16 / 32 GPUs: srun
    ("smoke", "resources.teacher.gpu=2"),                                   # 2 processes: gloo on CPU
])
def test_training_rules_launch_what_their_slurm_job_holds(scale, overrides):
    """Every rule of the DAG: a rule that asks for several GPUs or nodes launches one process per
    GPU, and the launch (torchrun --nproc-per-node, or srun --nodes/--ntasks-per-node/
    --cpus-per-task) matches the sbatch request the executor plugin builds from its resources."""
    args = ["-n", "-p", "--forceall", "results/instaflow/fid.json", "--config", f"scale={scale}"]
    res = snakemake(ROOT, *args, *([f"instaflow={overrides}"] if overrides else []), timeout=240)
    jobs = planned(res.stdout + res.stderr)
    launched = launches_matching_their_request(jobs)
    want = {"full": {"instaflow_reflow", "instaflow_distill"}, "smoke": {"instaflow_teacher"}}[scale]
    assert set(launched) == want, launched
    if scale == "full":
        kind = {r: launched[r]["launcher"] for r in want}
        assert kind == ({r: "torchrun" for r in want} if not overrides else {r: "srun" for r in want})
        print(f"\ninstaflow_reflow: {jobs['instaflow_reflow'][1].split(' > ')[0][:160]} ...\n"
              f"  sbatch: {sbatch_line(jobs['instaflow_reflow'][0])}")


def test_every_papers_full_scale_rules_launch_what_their_slurm_job_holds():
    """The same check over every registered paper's full-scale DAG (e.g. OneFlow's multi-node
    benchmarks beside InstaFlow's training rules)."""
    res = snakemake(ROOT, "-n", "-p", "--forceall", "--config", "scale=full", timeout=240)
    launched = launches_matching_their_request(planned(res.stdout + res.stderr))
    assert {"instaflow_reflow", "instaflow_distill"} <= set(launched), launched


def launches_matching_their_request(jobs: dict) -> dict:
    """{rule: parsed launch} of the rules that start several processes, after asserting that
    each launch matches the sbatch request the executor plugin builds from the rule's resources
    (and that no rule asking for several GPUs or nodes starts a single process)."""
    launched = {}
    for rule, (job, shell) in jobs.items():
        launch = distributed.parse_launch(shell)
        sb = sbatch_geometry(sbatch_line(job))
        if (sb["gpus_per_node"] or 0) > 1 or sb["nodes"] > 1:
            assert launch["launcher"] != "none", (rule, shell)
        if launch["launcher"] == "none":
            continue
        launched[rule] = launch
        assert launch["procs_per_node"] == sb["gpus_per_node"] and launch["nodes"] == sb["nodes"], (rule, launch, sb)
        if launch["launcher"] == "torchrun":
            assert sb["nodes"] == 1 and "--nodes=1" in sbatch_line(job), (rule, sbatch_line(job))
        else:
            assert sb["tasks_per_node"] == launch["procs_per_node"] and launch["cpus_per_task"] == sb["cpus_per_gpu"], (rule, launch, sb)
    return launched
