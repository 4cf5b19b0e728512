"""The actor runtime for pipeline parallelism (OneFlow §4): each stage (one process) runs a
forward actor and a backward actor; an actor fires when its input registers are ready and, for
the forward actor, a free output register exists. A stage has `quota` output registers: one is
taken by a micro-batch's forward and given back only when its backward has run on this stage
(the activation the backward needs lives in it). So at most `quota` micro-batches are in flight
per stage — the register quota bounds activation memory and gives back-pressure, with no
central scheduler: the stages coordinate only through the messages they exchange.

Messages between stages are point-to-point gloo transfers (activations forward, their gradients
backward), posted as non-blocking receives and counted in bytes like every other transfer; the
cost model for moving a tensor from one placement to another is its size.

Stages: the MLP's blocks [linear1+relu, linear2+relu, linear3, cross-entropy] split into
`world` contiguous stages (4 processes: one block each).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F

from steps.core.distributed import block
from steps.oneflow.comm import COUNTER
from steps.oneflow.gtensor import Record

BLOCKS = (("W1", "b1", True), ("W2", "b2", True), ("W3", "b3", False), None)  # None: the loss


def stage_blocks(stage: int, stages: int) -> list[int]:
    a, b = block(len(BLOCKS), stages, stage)
    return list(range(a, b))


def block_width(i: int, hidden: int) -> int:
    """Width of the activation leaving block i."""
    return (hidden, hidden, 10, 1)[i]


@dataclass
class StageStats:
    events: list = field(default_factory=list)   # (kind F|B, micro-batch, t0, t1), seconds from step start
    span: float = 0.0
    peak_inflight: int = 0


class Stage:
    """One pipeline stage on this process: its blocks, parameters and actors."""

    def __init__(self, stage: int, stages: int, params: dict[str, torch.Tensor], hidden: int, batch: int):
        self.s, self.S, self.hidden, self.batch = stage, stages, hidden, batch
        self.blocks = stage_blocks(stage, stages)
        self.params = {k: params[k].clone().requires_grad_(True)
                       for i in self.blocks if BLOCKS[i] for k in BLOCKS[i][:2]}
        self.records: list[Record] = []
        self._seq = 0

    @property
    def first(self) -> bool:
        return self.s == 0

    @property
    def last(self) -> bool:
        return self.s == self.S - 1

    def compute(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for i in self.blocks:
            if BLOCKS[i] is None:
                return F.cross_entropy(x, y, reduction="sum") / self.batch  # this micro-batch's share of the mean
            w, b, act = BLOCKS[i]
            x = x @ self.params[w] + self.params[b]
            if act:
                x = torch.relu(x)
        return x

    def _send(self, t: torch.Tensor, to: int, tag: int, what: str, sends: list) -> None:
        t = t.detach().contiguous()
        before = COUNTER.bytes
        COUNTER.add(t)
        sends.append((dist.isend(t, to, tag=tag), t))
        n = t.numel() * t.element_size()
        self.records.append(Record(self._seq, what, "pipeline", "p2p", 0, (min(self.s, to), max(self.s, to)),
                                   f"stage{self.s}", f"stage{to}", n, n, COUNTER.bytes - before))
        self._seq += 1

    def warm_up(self, x_micro: list[torch.Tensor], y_micro: list[torch.Tensor], quota: int) -> None:
        """One untimed iteration with lr = 0 (parameters unchanged, records dropped): first-use
        costs of a fresh process (lazy imports, allocator) are not read as pipeline idle time."""
        n = len(self.records)
        self.step(x_micro, y_micro, quota, 0.0)
        del self.records[n:]

    def step(self, x_micro: list[torch.Tensor], y_micro: list[torch.Tensor], quota: int, lr: float,
             timeout_s: float = 60.0, sync: bool = True) -> StageStats:
        """One training iteration over m micro-batches, actor-style; then SGD on this stage.
        sync: a barrier before and after, so that every stage's event times share one origin (the
        idle fractions); without it the messages alone order the stages (the throughput phase): a
        stage's next iteration starts after its neighbours have taken all of this iteration's
        messages (its last backward needed their replies), so a reused tag never meets an old receiver."""
        m, st = len(y_micro), StageStats()
        mb = y_micro[0].shape[0]
        w_in = x_micro[0].shape[1] if self.first else block_width(self.blocks[0] - 1, self.hidden)
        w_out = block_width(self.blocks[-1], self.hidden)
        inbox: queue.Queue = queue.Queue()  # (kind, micro-batch, tensor) from the receiving actors
        threads = []
        if not self.first:
            threads.append(_receiver(inbox, "act", self.s - 1, (mb, w_in), m, 0))
        if not self.last:
            threads.append(_receiver(inbox, "grad", self.s + 1, (mb, w_out), m, 1))
        acts: dict[int, torch.Tensor] = {}
        grads_in: dict[int, torch.Tensor] = {}
        sends: list = []
        inflight: dict[int, tuple] = {}   # micro-batch -> (input, output): the occupied registers
        grads: list = [None] * m
        if sync:
            dist.barrier()
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        nxt = done = 0
        while done < m:
            while not inbox.empty():
                kind, k, t = inbox.get_nowait()
                (acts if kind == "act" else grads_in)[k] = t
            fired = False
            for k in sorted(inflight):  # backward actor: its input register (the gradient) is ready
                if self.last or k in grads_in:
                    a = time.perf_counter()
                    xin, out = inflight.pop(k)
                    g_out = torch.ones_like(out) if self.last else grads_in.pop(k)
                    leaves = list(self.params.values()) + ([] if self.first else [xin])
                    gs = torch.autograd.grad(out, leaves, g_out)
                    grads[k] = gs[:len(self.params)]
                    if not self.first:
                        self._send(gs[-1], self.s - 1, 2 * k + 1, "bwd", sends)
                    st.events.append(("B", k, a - t0, time.perf_counter() - t0))
                    done += 1
                    fired = True
                    break
            # forward actor: input ready and a free output register (quota)
            if not fired and nxt < m and len(inflight) < quota and (self.first or nxt in acts):
                a = time.perf_counter()
                xin = x_micro[nxt] if self.first else acts.pop(nxt).requires_grad_(True)
                with torch.enable_grad():
                    out = self.compute(xin, y_micro[nxt])
                inflight[nxt] = (xin, out)
                st.peak_inflight = max(st.peak_inflight, len(inflight))
                if not self.last:
                    self._send(out, self.s + 1, 2 * nxt, "fwd", sends)
                st.events.append(("F", nxt, a - t0, time.perf_counter() - t0))
                nxt += 1
                fired = True
            if not fired:  # nothing can fire: sleep until a message arrives
                kind, k, t = inbox.get(timeout=timeout_s)
                (acts if kind == "act" else grads_in)[k] = t
        for req, _ in sends:
            req.wait()
        for th in threads:
            th.join(timeout_s)
        if sync:
            dist.barrier()
        st.span = time.perf_counter() - t0
        with torch.no_grad():  # gradients summed in micro-batch order: deterministic
            for j, p in enumerate(self.params.values()):
                g = grads[0][j]
                for k in range(1, m):
                    g = g + grads[k][j]
                p.sub_(lr * g)
        return st


def idle_fraction(st: StageStats) -> float:
    """Share of the step's span during which this stage computed nothing."""
    busy = sum(t1 - t0 for _, _, t0, t1 in st.events)
    return max(0.0, 1.0 - busy / st.span) if st.span > 0 else 0.0


def _receiver(inbox: queue.Queue, kind: str, src: int, shape, m: int, parity: int) -> threading.Thread:
    """A receiving actor: takes the m messages of one kind from a neighbour stage, in order, and
    hands each to the stage's inbox (a thread, so the compute actors never block on the wire)."""
    def run():
        for k in range(m):
            buf = torch.empty(shape)
            dist.recv(buf, src, tag=2 * k + parity)
            inbox.put((kind, k, buf))

    return threading.Thread(target=run, daemon=True, name=f"recv-{kind}")


