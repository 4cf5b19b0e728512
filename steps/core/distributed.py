"""Data-parallel training, one code path from 1 CPU process to N GPUs on several nodes.

A training step runs as one process or as N processes started by a launcher; PyTorch's
DistributedDataParallel (DDP) does the work, this module only wires it up:

* **Who am I.** `launcher_env()` reads rank, world size and local rank from the launcher's
  environment: torchrun's RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE, or srun's
  SLURM_PROCID / SLURM_STEP_NUM_TASKS / SLURM_LOCALID (MASTER_ADDR: the first host of the step's
  node list, 127.0.0.1 on one node). Neither: one process, world size 1, no process group.
* **Joining.** `init()` (called by steps.core.runtime.start) joins the process group: NCCL on
  CUDA GPUs (process i of a node on GPU i), gloo on CPU; every collective has a timeout
  (`dist.timeout_s`), so a rank that dies or hangs fails the job with a clear message instead of
  hanging it.
* **Data.** A step's global batch is drawn whole from seeding.step_generator(seed, stream, step)
  on every rank; rank r of N takes the contiguous slice r (`BatchPlan.rank_slice`) and splits it
  into micro-batches (gradient accumulation). DDP averages the gradients, so N ranks compute
  what one process computes, up to the order of floating-point reductions.
* **Precision.** `precision("auto", device)`: bf16 autocast on GPUs that support it (fp32
  master weights), fp32 on CPU; `fp32` and `bf16` force one.
* **Launch.** `launch_command(resources)` is the command prefix a Snakemake rule runs its step
  with (workflow/rules/common.smk): `python` for one process (no launcher start-up), torchrun
  over the GPUs of one node, srun over several nodes (one task per GPU).

Checkpoints (steps.core.checkpoint.TrainLoop) are written by rank 0 only and hold the
unwrapped model's state, which does not depend on the world size: a checkpoint written by N
ranks resumes on M. Rank 0 writes the step's main log; the others log to their own files
(`<log stem>.rank<r>.log` beside it).

Nothing here imports torch at module level: the Snakefile imports launch_command while parsing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from steps.core.errors import ConfigError, PaperzooError

LAUNCHERS = ("auto", "torchrun", "srun")
PRECISIONS = ("auto", "fp32", "bf16")
STRATEGIES = ("ddp",)


class RankFailure(PaperzooError):
    """A collective failed or timed out: another rank died or hangs. The job stops."""

    exit_code = 1


# ---------------------------------------------------------------------------- the launcher's word

@dataclass(frozen=True)
class LaunchEnv:
    """What the launcher told this process."""

    launcher: str = "none"  # none | torchrun | srun
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    nodes: int = 1
    master_addr: str | None = None
    master_port: int | None = None


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    value = env.get(key, "")
    return int(value) if value.strip().isdigit() else default


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'gpu[07-09,12],cpu1' → 'gpu07'."""
    head = re.match(r"([^,\[]*)(?:\[([^\]]*)\])?([^,]*)", nodelist.strip())
    if not head or not head.group(0):
        raise ConfigError(f"cannot read the SLURM node list {nodelist!r}")
    prefix, ranges, suffix = head.groups()
    if ranges is None:
        return prefix + suffix
    return prefix + re.split(r"[,-]", ranges)[0] + suffix


def _tasks_on_node(tasks_per_node: str, node: int) -> int | None:
    """SLURM_STEP_TASKS_PER_NODE ('2(x3),1') → the task count of node `node`."""
    counts: list[int] = []
    for part in tasks_per_node.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not m:
            return None
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    return counts[node] if node < len(counts) else None


def launcher_env(env: Mapping[str, str] | None = None) -> LaunchEnv:
    """Rank, world size, local rank and rendezvous address from torchrun's or srun's
    environment; one process when neither started several."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun (or anything that speaks its language)
        world = _int(env, "WORLD_SIZE", 1)
        local_world = _int(env, "LOCAL_WORLD_SIZE", world)
        return LaunchEnv("torchrun", _int(env, "RANK", 0), world, _int(env, "LOCAL_RANK", 0), local_world,
                         max(1, world // max(1, local_world)), env.get("MASTER_ADDR"), _int(env, "MASTER_PORT", 0) or None)
    ntasks = _int(env, "SLURM_STEP_NUM_TASKS", 1)  # set by srun for its tasks, not in the batch script
    if ntasks > 1 and "SLURM_PROCID" in env:
        nodes = _int(env, "SLURM_STEP_NUM_NODES", 1)
        local_world = _tasks_on_node(env.get("SLURM_STEP_TASKS_PER_NODE", ""), _int(env, "SLURM_NODEID", 0)) or ntasks // nodes
        addr = env.get("MASTER_ADDR")
        if not addr:
            nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
            addr = "127.0.0.1" if nodes == 1 or not nodelist else first_host(nodelist)
        port = _int(env, "MASTER_PORT", 0) or 20000 + _int(env, "SLURM_JOB_ID", 0) % 10000
        return LaunchEnv("srun", _int(env, "SLURM_PROCID", 0), ntasks, _int(env, "SLURM_LOCALID", 0), local_world,
                         nodes, addr, port)
    return LaunchEnv()


def rank_of_process(env: Mapping[str, str] | None = None) -> int:
    """This process's rank (0 when not launched as one of several)."""
    return launcher_env(env).rank


@dataclass
class RankLog:
    """Where a rank > 0 process logs, and a way to say one last line in the main log."""

    path: Path
    main_fd: int | None

    def last_words(self, line: str) -> None:
        if self.main_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.main_fd, (line.rstrip() + "\n").encode())


def _stderr_target() -> str | None:
    try:
        return os.readlink("/proc/self/fd/2")
    except OSError:
        return None


def rank_log_path(rank: int, name: str, stderr_target: str | None = None) -> Path:
    """Rank r's own log: beside the main log (logs/x/teacher_s0.log → teacher_s0.rank1.log) when
    stderr is that file (torchrun); else $PAPERZOO_RANK_LOGS/<name>.rank<r>.log, or under SLURM
    (srun pipes its tasks' output) logs/ranks/slurm-<job>-<name>.rank<r>.log in the working
    directory every node shares, or the temp dir."""
    if stderr_target and os.path.isfile(stderr_target):
        main = Path(stderr_target)
        return main.with_name(f"{main.stem}.rank{rank}{main.suffix or '.log'}")
    if os.environ.get("PAPERZOO_RANK_LOGS"):
        return Path(os.environ["PAPERZOO_RANK_LOGS"]) / f"{name}.rank{rank}.log"
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        return Path("logs") / "ranks" / f"slurm-{job}-{name}.rank{rank}.log"
    import tempfile

    return Path(tempfile.gettempdir()) / "paperzoo-ranks" / f"{name}.rank{rank}.log"


def redirect_rank_output(rank: int, name: str) -> RankLog:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so C++ warnings too) to
    its own log file; keep a descriptor on the main log for one last line."""
    import sys

    path = rank_log_path(rank, name, _stderr_target())
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    main_fd = os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return RankLog(path, main_fd)


# ------------------------------------------------------------------------------ the process group

@dataclass
class Dist:
    """This process's place in the job. World size 1 (the default) needs no process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    nodes: int = 1
    launcher: str = "none"
    backend: str = "none"
    device: object = None  # torch.device
    timeout_s: float = 600.0
    strategy: str = "ddp"
    _group_ready: bool = field(default=False, repr=False)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def record(self) -> dict:
        """What a checkpoint and the metrics say about the processes that trained."""
        return {"world_size": self.world, "nodes": self.nodes, "processes_per_node": self.local_world,
                "launcher": self.launcher, "backend": self.backend,
                "device": str(getattr(self.device, "type", self.device) or "cpu")}

    # -- collectives, each turning a failure into one clear line
    def comm(self, what: str, fn: Callable):
        """Run `fn`, which communicates with the other ranks; a communication failure (gloo:
        connection reset, timeout; NCCL: watchdog, abort) becomes a RankFailure."""
        try:
            return fn()
        except Exception as e:
            if not is_comm_error(e):
                raise
            self._fail(what, e)

    def _guard(self, what: str, fn: Callable):
        try:
            return fn()
        except Exception as e:  # gloo: connection closed / timeout; nccl: watchdog, ...
            self._fail(what, e)

    def _fail(self, what: str, e: Exception):
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise RankFailure(
            f"rank {self.rank}/{self.world}: {what} failed ({e.__class__.__name__}: {first}); another "
            f"process of this job died or hung longer than dist.timeout_s={self.timeout_s:g} s — its own log "
            "(<log>.rank<r>.log) or the launcher's summary says which; the job stops") from None

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (float64); the values themselves on one process."""
        if self.world == 1:
            return [float(v) for v in values]
        import torch
        import torch.distributed as td

        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm_device())
        self._guard("all-reduce", lambda: td.all_reduce(t))
        return t.cpu().tolist()

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            self._guard("barrier", lambda: td.barrier())

    def broadcast_(self, tensor, src: int):
        """Overwrite `tensor` on every rank with rank `src`'s (in place; returns it)."""
        if self.world == 1:
            return tensor
        import torch.distributed as td

        dev = self._comm_device()
        buf = tensor.to(dev) if tensor.device != dev else tensor
        self._guard("broadcast", lambda: td.broadcast(buf, src))
        if buf is not tensor:
            tensor.copy_(buf)
        return tensor

    def _comm_device(self):
        import torch

        return self.device if self.backend == "nccl" else torch.device("cpu")

    # -- splitting work
    def owner(self, item: int, n_items: int) -> int:
        """The rank that computes item `item` of `n_items` split into contiguous blocks."""
        for r in range(self.world):
            a, b = block(n_items, self.world, r)
            if a <= item < b:
                return r
        return self.world - 1

    def mine(self, n_items: int) -> range:
        """The items [a, b) of `n_items` this rank computes (contiguous blocks, rank order)."""
        return range(*block(n_items, self.world, self.rank))

    # -- the model
    def wrap(self, model):
        """The model to run forward and backward through: DDP over the ranks, or the model itself
        on one process. Checkpoints keep the unwrapped model's state."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if getattr(self.device, "type", "cpu") == "cuda" else None
        return self._guard("wrapping the model in DDP (broadcast of rank 0's weights)",
                           lambda: DistributedDataParallel(model, device_ids=ids))

    def no_sync(self, wrapped, sync: bool):
        """Skip DDP's gradient all-reduce on all but the last micro-batch of a step."""
        if sync or self.world == 1 or not hasattr(wrapped, "no_sync"):
            return contextlib.nullcontext()
        return wrapped.no_sync()

    def close(self) -> None:
        if self._group_ready:
            import torch.distributed as td

            with contextlib.suppress(Exception):
                td.destroy_process_group()
            self._group_ready = False


_COMM_WORDS = re.compile(r"gloo|nccl|connection|timed out|timeout|process ?group|socket|peer|collective", re.I)


def is_comm_error(e: BaseException) -> bool:
    """Does this exception come from communication between the ranks?"""
    import torch.distributed as td

    return isinstance(e, td.DistError) or (isinstance(e, RuntimeError) and bool(_COMM_WORDS.search(str(e))))


def block(n: int, parts: int, i: int) -> tuple[int, int]:
    """[a, b) of part i when n items are split into `parts` contiguous near-equal blocks."""
    return i * n // parts, (i + 1) * n // parts


_CURRENT = Dist()


def current() -> Dist:
    """The Dist of this process (world size 1 until init() joined a group)."""
    return _CURRENT


def init(cfg, device, env: LaunchEnv | None = None) -> Dist:
    """Join the process group the launcher set up (nothing on one process); sets current()."""
    global _CURRENT
    env = launcher_env() if env is None else env
    dcfg = cfg.get("dist") if hasattr(cfg, "get") else None
    timeout_s = float((dcfg or {}).get("timeout_s", 600.0))
    strategy = str((dcfg or {}).get("strategy", "ddp"))
    if strategy not in STRATEGIES:
        raise ConfigError(f"dist.strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    d = Dist(env.rank, env.world, env.local_rank, env.local_world, env.nodes, env.launcher, "none", device,
             timeout_s, strategy)
    if env.world > 1:
        import datetime

        import torch.distributed as td

        d.backend = "nccl" if getattr(device, "type", "cpu") == "cuda" else "gloo"
        if env.launcher == "srun":  # torchrun exports these itself
            os.environ.setdefault("MASTER_ADDR", str(env.master_addr))
            os.environ.setdefault("MASTER_PORT", str(env.master_port))
        kwargs = {"device_id": device} if d.backend == "nccl" else {}
        try:
            td.init_process_group(d.backend, init_method="env://", rank=env.rank, world_size=env.world,
                                  timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
        except Exception as e:
            raise RankFailure(f"rank {env.rank}/{env.world}: could not join the process group at "
                              f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} within "
                              f"dist.timeout_s={timeout_s:g} s ({e.__class__.__name__}: {str(e)[:200]})") from None
        d._group_ready = True
    _CURRENT = d
    return d


def reset() -> None:
    """Leave the process group (tests; the end of a step)."""
    global _CURRENT
    _CURRENT.close()
    _CURRENT = Dist()


# ----------------------------------------------------------------------- batches and precision

@dataclass(frozen=True)
class BatchPlan:
    """How one global batch is computed: world × accumulation × micro = global."""

    global_batch: int
    world: int
    micro: int
    accumulation: int

    @property
    def per_rank(self) -> int:
        return self.micro * self.accumulation

    def rank_slice(self, rank: int) -> slice:
        """Rank r's contiguous share of the global batch."""
        return slice(rank * self.per_rank, (rank + 1) * self.per_rank)

    def micro_slices(self, rank: int) -> list[slice]:
        """Rank r's micro-batches, as slices of the global batch."""
        start = rank * self.per_rank
        return [slice(start + i * self.micro, start + (i + 1) * self.micro) for i in range(self.accumulation)]

    def record(self) -> dict:
        return {"global_batch": self.global_batch, "micro_batch": self.micro,
                "accumulation_steps": self.accumulation, "effective_batch": self.world * self.per_rank}


def batch_plan(global_batch: int, micro_batch: int | None, world: int) -> BatchPlan:
    """Split a global batch over `world` processes and micro-batches of at most `micro_batch`
    (None: the whole per-process share at once). Refuses what does not divide evenly: the
    effective batch is always the global batch params ask for."""
    global_batch, world = int(global_batch), int(world)
    if global_batch < 1:
        raise ConfigError(f"batch must be positive, got {global_batch}")
    if global_batch % world:
        raise ConfigError(f"global batch {global_batch} is not divisible by the {world} processes; "
                          "choose a GPU count (resources.<phase>.gpu × nodes) that divides it")
    per_rank = global_batch // world
    micro = per_rank if micro_batch in (None, 0) else min(int(micro_batch), per_rank)
    if micro < 1 or per_rank % micro:
        raise ConfigError(f"per-process batch {per_rank} (global {global_batch} / {world} processes) is not a "
                          f"multiple of micro_batch {micro_batch}")
    return BatchPlan(global_batch, world, micro, per_rank // micro)


def precision(name: str | None, device) -> str:
    """The precision a step trains in: `auto` is bf16 on a CUDA GPU that supports it, else fp32."""
    name = str(name or "auto")
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    cuda = getattr(device, "type", "cpu") == "cuda"
    if name == "fp32":
        return "fp32"
    import torch

    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if name == "auto":
        return "bf16" if bf16_ok else "fp32"
    if cuda and not bf16_ok:
        raise ConfigError(f"precision bf16 asked for, but {torch.cuda.get_device_name(device)} has no bf16; use fp32 or auto")
    return "bf16"


def autocast(prec: str, device):
    """Mixed precision: bf16 autocast (weights and gradients stay fp32); nothing for fp32."""
    if prec == "bf16":
        import torch

        return torch.autocast(getattr(device, "type", "cpu"), dtype=torch.bfloat16)
    return contextlib.nullcontext()


def backward(dist: Dist, wrapped, plan: BatchPlan, prec: str, device, micro_loss: Callable) -> float:
    """Forward and backward over this rank's micro-batches of one global batch; gradients end
    summed over micro-batches and averaged over ranks (the global batch's mean-loss gradient).
    `micro_loss(i, sl)` returns the mean loss of micro-batch i, `sl` its slice of the global
    batch. Returns this rank's mean loss."""
    total = 0.0
    slices = plan.micro_slices(dist.rank)
    for i, sl in enumerate(slices):
        last = i == len(slices) - 1
        with dist.no_sync(wrapped, sync=last):
            with autocast(prec, device):
                loss = micro_loss(i, sl).float() / plan.accumulation
            if last and dist.world > 1:  # DDP's gradient all-reduce runs (and may fail) here
                dist.comm("gradient all-reduce", loss.backward)
            else:
                loss.backward()
        total += float(loss.detach())
    return total


# -------------------------------------------------------------------------------------- launching

def geometry(section: Mapping) -> dict:
    """The process geometry of a rule's params resources section: {nodes, procs_per_node,
    world, launcher} — one process per GPU (procs_per_node = gpu), one process for a CPU rule."""
    gpus = int(section.get("gpu") or 0)
    nodes = int(section.get("nodes") or 1)
    launcher = str(section.get("launcher") or "auto")
    if launcher not in LAUNCHERS:
        raise ConfigError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if nodes < 1:
        raise ConfigError(f"nodes must be at least 1, got {nodes}")
    if nodes > 1 and gpus < 1:
        raise ConfigError("nodes > 1 needs gpu ≥ 1 (one process per GPU of each node)")
    if launcher == "torchrun" and nodes > 1:
        raise ConfigError("launcher torchrun starts the processes of one node; use launcher srun (or auto) for nodes > 1")
    procs = max(1, gpus)
    if nodes * procs == 1:
        launcher = "none"  # one process: plain python, world size 1
    elif launcher == "auto":
        launcher = "srun" if nodes > 1 else "torchrun"
    return {"nodes": nodes, "procs_per_node": procs, "world": nodes * procs, "launcher": launcher}


def launch_command(resources: Mapping, shutdown_s: float = 240.0, python: str = "python") -> str:
    """The command prefix that starts a step (`<prefix> -m steps.<paper>.<phase> ...`) for a
    rule's params resources section (resources.<phase>: gpu, nodes, launcher, cpus_per_gpu):

    * one process: `python` — no launcher, no start-up cost, world size 1;
    * several on one node: `python -m torch.distributed.run --standalone --nnodes=1
      --nproc-per-node=<gpu> ...` (torchrun tears the group down when a process dies; on SIGTERM
      it gives the processes `shutdown_s` to write their checkpoint);
    * several nodes (or launcher srun): `srun --nodes=<n> --ntasks-per-node=<gpu>
      --cpus-per-task=<cpus_per_gpu> --kill-on-bad-exit=1 python` inside the job's allocation.
    """
    g = geometry(resources)
    if g["launcher"] == "none":
        return python
    if g["launcher"] == "torchrun":
        return (f"{python} -m torch.distributed.run --standalone --nnodes=1 --nproc-per-node={g['procs_per_node']} "
                f"--max-restarts=0 --shutdown-timeout={int(shutdown_s)}")
    cpus = int(resources.get("cpus_per_gpu") or 1)
    return (f"srun --nodes={g['nodes']} --ntasks-per-node={g['procs_per_node']} --cpus-per-task={cpus} "
            f"--kill-on-bad-exit=1 {python}")


def parse_launch(command: str) -> dict:
    """The geometry a shell command launches: {launcher, nodes, procs_per_node, cpus_per_task}
    (inverse of launch_command, for checks and tests)."""
    words = shlex.split(command)

    def opt(name: str, default=None):
        for i, w in enumerate(words):
            if w.startswith(f"--{name}="):
                return w.split("=", 1)[1]
            if w == f"--{name}" and i + 1 < len(words):
                return words[i + 1]
        return default

    if words and words[0] == "srun":
        return {"launcher": "srun", "nodes": int(opt("nodes", 1)), "procs_per_node": int(opt("ntasks-per-node", 1)),
                "cpus_per_task": int(opt("cpus-per-task", 1))}
    if "torch.distributed.run" in words or (words and words[0] == "torchrun"):
        return {"launcher": "torchrun", "nodes": int(opt("nnodes", 1)),
                "procs_per_node": int(opt("nproc-per-node", opt("nproc_per_node", 1))), "cpus_per_task": None}
    return {"launcher": "none", "nodes": 1, "procs_per_node": 1, "cpus_per_task": None}
