"""Device and threads: CUDA when present (unless the config says cpu), threads set to the cores
the job was given."""

from __future__ import annotations

import os


def allotted_cores() -> int:
    """Cores this process may use: SLURM's allocation (else the CPU affinity mask), shared
    among the processes a launcher such as torchrun started on this node."""
    cores = None
    for var in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        if os.environ.get(var, "").isdigit():
            cores = int(os.environ[var])
            break
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, cores // max(1, int(local) if local.isdigit() else 1))


def setup(device: str = "auto", threads: int = 0, local_rank: int = 0, local_world: int = 1):
    """Pick the device and set torch's thread count; returns (torch.device, description).
    Process `local_rank` of `local_world` on a node (steps.core.distributed) gets GPU
    local_rank and its share of the threads (`threads` are the job's, 0: the cores allotted)."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        from steps.core.errors import ConfigError

        raise ConfigError(f"device must be auto, cpu or cuda, got '{device}'")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        from steps.core.errors import ConfigError

        raise ConfigError("device=cuda but no CUDA GPU is visible; use device=auto or device=cpu")
    n = max(1, threads // max(1, local_world)) if threads and threads > 0 else allotted_cores()
    torch.set_num_threads(n)
    if use_cuda:
        # Deterministic CUDA kernels (this also imports torch._inductor, ≈1 s, so not on CPU).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        count = torch.cuda.device_count()
        # one process per GPU: GPU local_rank (a launcher that bound each process to its own GPU leaves one visible)
        dev = torch.device("cuda", local_rank % count if count else 0)
        torch.cuda.set_device(dev)
        return dev, f"cuda:{dev.index} ({torch.cuda.get_device_name(dev)}), {n} CPU threads"
    return torch.device("cpu"), f"cpu, {n} threads"
