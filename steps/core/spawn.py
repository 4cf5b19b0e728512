"""Start a group of N local gloo processes from inside one step, run a function on every rank,
collect what each returns, and always reap them.

    results = spawn.run_group(worker, world=4, args=(...,), cfg=cfg, timeout_s=120)

For papers whose mechanism *is* the communication between processes (SBP boxing, pipeline
runtimes) and whose rule is a CPU job: the step is one process that forks `world` workers.
Each worker gets the launcher environment torchrun would give it (RANK, WORLD_SIZE, MASTER_*),
joins the process group through steps.core.distributed.init (gloo, every collective bounded by
dist.timeout_s) and dies with its parent (PR_SET_PDEATHSIG on Linux). The parent waits at most
`timeout_s`; when a rank fails, hangs or the time is up it kills them all, joins them, and raises
one RankFailure naming the rank and its error. No worker outlives the call.

Workers are forked (no re-import of torch: the group starts in milliseconds); the parent must
not have started torch's thread pools before (do tensor work after run_group, or in a worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import queue
import signal
import socket
import time
import traceback
from collections.abc import Callable, Sequence

from steps.core.distributed import RankFailure


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child(fn, rank: int, world: int, port: int, cfg, args, out) -> None:
    _die_with_parent()
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world)})
    try:
        import torch

        from steps.core import distributed

        torch.set_num_threads(1)
        distributed.init(cfg, torch.device("cpu"))
        result = fn(rank, world, *args)
        out.put((rank, "ok", pickle.dumps(result)))  # plain bytes: no shared-memory handles
        distributed.reset()
        status = 0
    except BaseException as e:  # noqa: BLE001 — reported to the parent, which raises
        out.put((rank, "error", f"{e.__class__.__name__}: {e}\n{traceback.format_exc()[-2000:]}"))
        status = 1
    out.close()
    out.join_thread()  # the queue's feeder thread must finish writing before the process ends
    os._exit(status)


def run_group(fn: Callable, world: int, args: Sequence = (), cfg=None, timeout_s: float = 300.0) -> list:
    """fn(rank, world, *args) on `world` forked gloo processes; their return values by rank."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_child, args=(fn, r, world, port, cfg, tuple(args), out), daemon=True)
             for r in range(world)]
    results: dict[int, object] = {}
    failure = None
    deadline = time.monotonic() + float(timeout_s)
    try:
        for p in procs:
            p.start()
        while len(results) < world and failure is None:
            try:
                rank, status, value = out.get(timeout=0.2)
            except queue.Empty:
                dead = [r for r, p in enumerate(procs) if p.exitcode not in (None, 0) and r not in results]
                if dead:
                    failure = f"rank {dead[0]} exited with status {procs[dead[0]].exitcode} without a result"
                elif time.monotonic() > deadline:
                    failure = f"the group of {world} processes did not finish within {timeout_s:g} s"
                continue
            if status == "ok":
                results[rank] = pickle.loads(value)
            else:
                failure = f"rank {rank} failed: {value}"
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()) if failure is None else 0.5)
    finally:
        for p in procs:  # reap everything, whatever happened
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join()
        out.close()
    if failure is not None:
        first = failure.strip().splitlines()[0]
        raise RankFailure(f"{first} (dist.timeout_s bounds each collective; the others were stopped)")
    return [results[r] for r in range(world)]
