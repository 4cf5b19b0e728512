"""Collectives as ring algorithms on point-to-point send/recv, so that the bytes each rank puts
on the wire are counted exactly (the spec's pitfall: counting the logical payload of gloo's own
all_reduce would not measure wire bytes).

A `RingComm` is one group of global ranks (one mesh axis of a placement, with the other mesh
coordinates fixed); point-to-point messages go through the default gloo process group, whose
timeout (dist.timeout_s) bounds every wait. `PlanComm` has the same interface and moves nothing:
the planner uses it to predict a whole iteration's traffic in one process.

Totals over the p ranks of a group (n = bytes of the tensor the group works on):
ring all-gather and reduce-scatter send every chunk p-1 times, (p-1)n; all-reduce is the two,
2(p-1)n; the pairwise all-to-all sends each rank's shard minus the block it keeps, (p-1)n/p.
"""

from __future__ import annotations

import torch


class ByteCounter:
    """Bytes this process has sent, and messages."""

    def __init__(self) -> None:
        self.bytes = 0
        self.messages = 0

    def add(self, t: torch.Tensor) -> None:
        self.bytes += t.numel() * t.element_size()
        self.messages += 1


COUNTER = ByteCounter()


def _chunks(t: torch.Tensor, p: int, dim: int) -> list[torch.Tensor]:
    if t.shape[dim] % p:
        raise ValueError(f"cannot split a tensor of shape {tuple(t.shape)} along axis {dim} into {p} equal shards")
    return [c.contiguous() for c in torch.chunk(t, p, dim)]


class RingComm:
    """Ring collectives among `ranks` (global ranks, in mesh order); `me` is this process's rank."""

    def __init__(self, ranks: tuple[int, ...], me: int, counter: ByteCounter = COUNTER) -> None:
        self.ranks, self.me, self.counter = tuple(ranks), me, counter
        self.p = len(ranks)
        self.pos = self.ranks.index(me)
        self.plan_only = False

    # -- point to point, counted
    def _exchange(self, send: torch.Tensor, to_pos: int, recv_shape, from_pos: int, dtype) -> torch.Tensor:
        import torch.distributed as dist

        buf = torch.empty(recv_shape, dtype=dtype)
        send = send.contiguous()
        self.counter.add(send)
        req = dist.isend(send, self.ranks[to_pos])
        dist.recv(buf, self.ranks[from_pos])
        req.wait()
        return buf

    def send(self, t: torch.Tensor, to_rank: int) -> None:
        import torch.distributed as dist

        t = t.contiguous()
        self.counter.add(t)
        dist.send(t, to_rank)

    # -- collectives
    def all_gather(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """Concatenate the p shards along `dim` (S(dim) -> B)."""
        p, r = self.p, self.pos
        if p == 1:
            return t
        parts: list[torch.Tensor | None] = [None] * p
        parts[r] = t.contiguous()
        nxt, prv = (r + 1) % p, (r - 1) % p
        for k in range(p - 1):
            send_i, recv_i = (r - k) % p, (r - k - 1) % p
            parts[recv_i] = self._exchange(parts[send_i], nxt, t.shape, prv, t.dtype)
        return torch.cat(parts, dim)

    def reduce_scatter(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """Sum over ranks, keep chunk `pos` along `dim` (P -> S(dim))."""
        p, r = self.p, self.pos
        if p == 1:
            return t
        acc = [c.clone() for c in _chunks(t, p, dim)]
        nxt, prv = (r + 1) % p, (r - 1) % p
        for k in range(p - 1):
            send_i, recv_i = (r - k - 1) % p, (r - k - 2) % p
            got = self._exchange(acc[send_i], nxt, acc[recv_i].shape, prv, t.dtype)
            acc[recv_i] = acc[recv_i] + got
        return acc[r]

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (P -> B): ring reduce-scatter then ring all-gather on the flat tensor,
        in chunks of any size (tensor_split), so any shape works."""
        p, r = self.p, self.pos
        if p == 1:
            return t
        flat = t.reshape(-1)
        acc = [c.clone() for c in torch.tensor_split(flat, p)]
        nxt, prv = (r + 1) % p, (r - 1) % p
        for k in range(p - 1):
            send_i, recv_i = (r - k - 1) % p, (r - k - 2) % p
            acc[recv_i] = acc[recv_i] + self._exchange(acc[send_i], nxt, acc[recv_i].shape, prv, t.dtype)
        for k in range(p - 1):
            send_i, recv_i = (r - k) % p, (r - k - 1) % p
            acc[recv_i] = self._exchange(acc[send_i], nxt, acc[recv_i].shape, prv, t.dtype)
        return torch.cat(acc).reshape(t.shape)

    def all_to_all(self, t: torch.Tensor, src_dim: int, dst_dim: int) -> torch.Tensor:
        """S(src_dim) -> S(dst_dim): block k of my shard (along dst_dim) goes to rank k; I keep
        mine and concatenate what I get along src_dim (pairwise exchange, p-1 rounds)."""
        p, r = self.p, self.pos
        if p == 1:
            return t
        blocks = _chunks(t, p, dst_dim)
        got: list[torch.Tensor | None] = [None] * p
        got[r] = blocks[r]
        for k in range(1, p):
            to, frm = (r + k) % p, (r - k) % p
            got[frm] = self._exchange(blocks[to], to, blocks[r].shape, frm, t.dtype)
        return torch.cat(got, src_dim)


class PlanComm(RingComm):
    """Same shapes out, nothing sent: for the planner's dry run of an iteration."""

    def __init__(self, p: int, pos: int = 0) -> None:
        self.ranks, self.me, self.p, self.pos = tuple(range(p)), pos, p, pos
        self.counter = ByteCounter()
        self.plan_only = True

    def all_gather(self, t, dim):
        return torch.cat([t] * self.p, dim) if self.p > 1 else t

    def reduce_scatter(self, t, dim):
        return _chunks(t, self.p, dim)[self.pos] if self.p > 1 else t

    def all_reduce(self, t):
        return t.clone()

    def all_to_all(self, t, src_dim, dst_dim):
        if self.p == 1:
            return t
        block = _chunks(t, self.p, dst_dim)[self.pos]
        return torch.cat([block] * self.p, src_dim)
